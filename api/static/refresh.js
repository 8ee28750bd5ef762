// Vigil's refreshing regions: the element with data-refresh="<seconds>"
// and an id is replaced, every so many seconds while the tab is visible
// (and at once when it becomes visible again), by the same element of a
// fresh fetch of the page's own URL. Scroll position, focus and the rest
// of the page stay. Without script the page works the same; reload it by
// hand.
(function () {
  'use strict';
  var region = document.querySelector('[data-refresh][id]');
  if (!region || !window.fetch || !window.DOMParser) { return; }
  var seconds = Math.max(5, parseInt(region.getAttribute('data-refresh'), 10) || 30);
  var busy = false;
  function refresh() {
    if (document.hidden || busy) { return; }
    busy = true;
    fetch(location.pathname + location.search, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (html) {
        // A page without the region (the sign-in form once the session
        // has ended) leaves the old one in place.
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById(region.id);
        if (!fresh) { return; }
        region.innerHTML = fresh.innerHTML;
        window.vigilRefreshedAt = Date.now(); // for the browser test
      })
      .catch(function () { /* the next tick retries */ })
      .then(function () { busy = false; });
  }
  setInterval(refresh, seconds * 1000);
  document.addEventListener('visibilitychange', refresh);
})();
