// Vigil console scripts. On the board, a live countdown to each
// incident's next escalation ([data-due] elements). On My work, the live
// list: it follows /ui/stream (the signed-in staff member's notifications);
// on each new one it refreshes the lists, shows a badge, puts the count in
// the tab title and plays a short tone (once the page has had a click or
// key press, as browsers require for sound).
(function () {
  'use strict';
  var dues = document.querySelectorAll('[data-due]');
  function countdown() {
    var now = Date.now();
    for (var i = 0; i < dues.length; i++) {
      var left = Math.round((Date.parse(dues[i].getAttribute('data-due')) - now) / 1000);
      if (left <= 0) {
        dues[i].textContent = 'due now';
        continue;
      }
      var m = Math.floor(left / 60);
      var s = left % 60;
      dues[i].textContent = 'in ' + (m > 0 ? m + 'm ' : '') + (s < 10 && m > 0 ? '0' : '') + s + 's';
    }
  }
  if (dues.length > 0) {
    countdown();
    setInterval(countdown, 1000);
  }
})();

(function () {
  'use strict';
  var work = document.getElementById('work');
  var badge = document.getElementById('badge');
  if (!work || !badge || !window.EventSource) { return; }
  var baseTitle = document.title;
  var count = 0;
  var audio = null;
  function unlock() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) { audio = new Ctx(); }
  }
  document.addEventListener('click', unlock, { once: true });
  document.addEventListener('keydown', unlock, { once: true });
  function tone() {
    if (!audio) { return; }
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.3);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  }
  function typing() {
    var fields = work.querySelectorAll('textarea, input:not([type=hidden])');
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== '') { return true; }
    }
    return false;
  }
  // refresh reloads the lists. A page can reach the stream a moment before
  // the incident's row shows the assignment, so while the paged incident
  // is not among mine yet it tries again a few times.
  function refresh(started, incidentID, attempt) {
    if (typing()) { return; } // keep what the user is writing; the badge says there is news
    fetch(location.pathname + location.search, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('work');
        if (!fresh) { return; }
        work.innerHTML = fresh.innerHTML;
        var mine = document.getElementById('mine');
        if (incidentID && mine && !mine.querySelector('[id="i-' + incidentID + '"]') && attempt < 6) {
          setTimeout(function () { refresh(started, incidentID, attempt + 1); }, 500);
          return;
        }
        // For the browser test's measure of a live update.
        window.vigilLastUpdateMs = performance.now() - started;
        window.vigilUpdatedAt = Date.now();
      })
      .catch(function () { /* the next event retries */ });
  }
  var last = work.getAttribute('data-last-event') || '0';
  var stream = new EventSource('/ui/stream?last_event_id=' + encodeURIComponent(last));
  stream.addEventListener('notification', function (e) {
    var started = performance.now();
    var incidentID = '';
    try { incidentID = JSON.parse(e.data).incident_id || ''; } catch (err) { /* no incident */ }
    count++;
    document.title = '(' + count + ') ' + baseTitle;
    badge.textContent = count + ' new';
    badge.hidden = false;
    tone();
    refresh(started, incidentID, 0);
  });
})();
