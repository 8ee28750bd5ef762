// Vigil console, Messages page: new messages arrive without a reload. The
// page lists the receivers to follow (data-streams); for each one the
// script follows /ui/messages-stream/<id> (the JSON API's message stream,
// with the console session) and adds each new message: to the open
// conversation when the conversation's party sent or receives it
// (#thread), else to the "new" list above the conversations (#live, for
// messages stored after the page was rendered).
// Messages are added as text, never as HTML.
(function () {
  'use strict';
  var list = document.getElementById('thread') || document.getElementById('live');
  if (!list || !window.EventSource) { return; }
  var partyType = list.getAttribute('data-party-type');
  var partyID = list.getAttribute('data-party-id');
  var ids = (list.getAttribute('data-streams') || '').split(' ');
  // The list page shows only what arrives after it was rendered (the
  // streams start a few seconds back).
  var since = Date.parse(list.getAttribute('data-since') || '') || 0;
  var section = document.getElementById('live-section');
  var baseTitle = document.title;
  var count = 0;
  function involves(m) {
    if (!partyType) { return true; }
    return (m.sender_type === partyType && m.sender_id === partyID) ||
      (m.receiver_type === partyType && m.receiver_id === partyID);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text) { e.textContent = text; }
    return e;
  }
  function add(m) {
    if (!involves(m) || document.getElementById('m-' + m.id) || Date.parse(m.created_at) < since) { return; }
    var li = el('li');
    li.id = 'm-' + m.id;
    li.appendChild(el('span', 'badge grey', m.message_type.name));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('strong', '', m.sender_type + ' ' + m.sender_id));
    var when = el('time', '', m.created_at.replace('T', ' ').slice(0, 16) + ' UTC');
    when.setAttribute('datetime', m.created_at);
    li.appendChild(document.createTextNode(' → ' + m.receiver_type + ' ' + m.receiver_id + ' · '));
    li.appendChild(when);
    li.appendChild(el('p', 'body', m.content));
    list.appendChild(li);
    if (section) { section.hidden = false; }
    var empty = document.getElementById('empty');
    if (empty) { empty.hidden = true; }
    count++;
    document.title = '(' + count + ') ' + baseTitle;
    // For the browser test's measure of live arrival.
    window.vigilMessageArrivedAt = Date.now();
  }
  var streams = [];
  for (var i = 0; i < ids.length; i++) {
    if (!ids[i]) { continue; }
    var stream = new EventSource('/ui/messages-stream/' + encodeURIComponent(ids[i]));
    stream.addEventListener('message', function (e) {
      try { add(JSON.parse(e.data)); } catch (err) { /* not a message */ }
    });
    streams.push(stream);
  }
  // Leaving the page closes its streams at once: browsers allow about six
  // connections per site, and the next page needs them. A page restored
  // from the back-forward cache is loaded afresh.
  window.addEventListener('pagehide', function () {
    for (var j = 0; j < streams.length; j++) { streams[j].close(); }
  });
  window.addEventListener('pageshow', function (e) {
    if (e.persisted) { location.reload(); }
  });
})();
