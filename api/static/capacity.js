// Vigil's Capacity page: the watched services (JSON in #capacity-data) on a
// Leaflet map, one circle marker per service coloured by status, with the
// status in its tooltip; tiles from the template in #map's data-tiles (none
// when it is empty). Every 10 seconds it reads /ui/capacity/statuses and
// recolours the markers and the table's status badges without a reload,
// and adds a marker for a service that appeared since (a new watch's first
// poll).
// Without tiles (a closed network) the markers still show; without this
// script the table lists every service.
(function () {
  'use strict';
  var COLOURS = { green: '#2e7d32', yellow: '#fbc02d', red: '#c62828', grey: '#757575' };
  var POLL_MS = 10000;
  var el = document.getElementById('map');
  var data = document.getElementById('capacity-data');
  if (!el || !data || typeof L === 'undefined') {
    return;
  }
  var services = JSON.parse(data.textContent || '[]') || [];
  el.textContent = '';
  var map = L.map(el, { scrollWheelZoom: false });
  var tiles = el.getAttribute('data-tiles');
  var note = document.getElementById('map-note');
  if (tiles) {
    var layer = L.tileLayer(tiles, {
      maxZoom: 18,
      attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    });
    var warned = false;
    layer.on('tileerror', function () {
      if (!warned && note) {
        warned = true;
        note.textContent += ' Map tiles could not load; the markers and the table still show every status.';
      }
    });
    layer.addTo(map);
  }
  var markers = {};

  function label(s) {
    return s.name + ' (' + s.id + '): ' + s.status;
  }

  function paint(m, s) {
    m.setStyle({ fillColor: COLOURS[s.colour] || COLOURS.grey });
    m.setTooltipContent(label(s));
    var path = m.getElement();
    if (path) {
      path.setAttribute('data-capacity', s.status);
      path.setAttribute('aria-label', label(s));
    }
  }

  // The view first: Leaflet draws a marker's path only on a map that has
  // one, and paint labels the path.
  var placed = services.filter(function (s) { return s.lat !== null && s.lon !== null; });
  if (placed.length > 0) {
    var bounds = L.latLngBounds(placed.map(function (s) { return [s.lat, s.lon]; }));
    var fit = function () { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 12 }); };
    fit();
    map.on('resize', fit); // a phone turned, a window resized: every marker stays in view
  } else {
    map.setView([53.5, -1.8], 6);
  }
  function place(s) {
    var m = L.circleMarker([s.lat, s.lon], {
      radius: 9, color: '#1a1a1a', weight: 2, fillOpacity: 0.9,
      className: 'svc svc-' + s.id
    }).bindTooltip(label(s)).addTo(map);
    markers[s.id] = m;
    paint(m, s);
  }
  placed.forEach(place);

  // update recolours the markers and badges, and places a marker for a
  // service first seen since the page loaded (a watch's first poll).
  function update(list) {
    list.forEach(function (s) {
      if (markers[s.id]) {
        paint(markers[s.id], s);
      } else if (s.lat !== null && s.lon !== null && s.lat !== undefined && s.lon !== undefined) {
        place(s);
      }
      var badge = document.querySelector('[data-status="' + s.id + '"]');
      if (badge && badge.textContent !== s.status) {
        badge.textContent = s.status;
        badge.className = 'badge ' + s.colour;
      }
    });
    window.vigilCapacityUpdatedAt = Date.now();
  }

  function poll() {
    fetch('/ui/capacity/statuses', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body && body.services) { update(body.services); } })
      .catch(function () { /* offline for a moment: the next poll retries */ })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  setTimeout(poll, POLL_MS);
})();
