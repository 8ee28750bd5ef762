//go:build integration

package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
)

// capacityFeed is /ui/capacity/statuses.
type capacityFeed struct {
	Services []struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Colour   string   `json:"colour"`
		Lat, Lon *float64 `json:"-"`
	} `json:"services"`
}

// TestConsoleCapacity_PageFormsAndRights drives the Capacity page over
// HTTP: a nurse reads it without the management forms and cannot post
// them; a charge nurse creates a watch (bad input is refused inline,
// naming the field), sees its service on the map's data and in the
// status feed, and after a status change in the directory sees it under
// "Not at HIGH" and "Recent changes"; then pauses, resumes, changes the
// interval and deletes the watch, each form CSRF-checked.
func TestConsoleCapacity_PageFormsAndRights(t *testing.T) {
	s, sim, _ := directoryStack(t)
	svc := directorysim.DemoServices()[0]
	require.NoError(t, sim.SetCapacity(svc.ID, directory.CapacityHigh, "nurse.a"))

	nurse := consoleSignIn(t, s, "n01")
	resp, body := ndRaw(t, s, "GET", "/ui/capacity", "", "", "", "Cookie", nurse)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	page := string(body)
	require.Contains(t, page, `<h1>Capacity</h1>`)
	require.Contains(t, page, `href="/ui/capacity" aria-current="page"`)
	require.Contains(t, page, "Charge nurses and admins manage watches.")
	require.NotContains(t, page, `action="/ui/capacity/watches"`, "no create form for a nurse")
	require.Contains(t, page, `<script type="application/json" id="capacity-data">`)
	require.Contains(t, page, `data-tiles=""`, "no tile URL configured")
	require.Contains(t, page, "Map tiles are off")
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self';")
	require.Contains(t, csp, "style-src 'self' 'unsafe-inline'")
	require.NotContains(t, csp, "script-src 'self' 'unsafe-inline'")
	nurseToken := consoleCSRF(t, body)
	resp, body = ndRaw(t, s, "POST", "/ui/capacity/watches", "", consoleFormType,
		url.Values{"csrf": {nurseToken}, "kind": {"service"}, "service_id": {svc.ID}}.Encode(), "Cookie", nurse)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "for charge nurses and admins")

	charge := consoleSignIn(t, s, "c01")
	_, body = ndRaw(t, s, "GET", "/ui/capacity", "", "", "", "Cookie", charge)
	require.Contains(t, string(body), `action="/ui/capacity/watches"`)
	token := consoleCSRF(t, body)
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, body := ndRaw(t, s, "POST", path, "", consoleFormType, form.Encode(), "Cookie", charge)
		return resp, string(body)
	}

	// Refusals name the field, inline, and keep what was typed.
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"interval too short", url.Values{"kind": {"service"}, "service_id": {svc.ID}, "interval_seconds": {"30"}, "description": {"kept text"}},
			"the interval seconds must be 60 to 86400."},
		{"interval not a number", url.Values{"kind": {"service"}, "service_id": {svc.ID}, "interval_seconds": {"soon"}}, "the interval seconds must be a whole number."},
		{"no service id", url.Values{"kind": {"service"}}, "the service id is required for a service watch."},
		{"unknown kind", url.Values{"kind": {"region"}}, "the kind must be service or search."},
		{"bad postcode", url.Values{"kind": {"search"}, "postcode": {"NOWHERE"}, "distance_miles": {"5"}, "service_types": {"40"}}, "the search postcode must be a UK postcode"},
		{"bad sms", url.Values{"kind": {"service"}, "service_id": {svc.ID}, "sms_numbers": {"07700 900001"}}, "the sms numbers must be E.164 numbers"},
	} {
		tc.form.Set("csrf", token)
		resp, page := post("/ui/capacity/watches", tc.form)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.name)
		require.Contains(t, page, `role="alert"`, tc.name)
		require.Contains(t, page, tc.want, tc.name)
	}
	_, page = post("/ui/capacity/watches", url.Values{"csrf": {token}, "kind": {"service"}, "service_id": {svc.ID}, "interval_seconds": {"30"}, "description": {"kept text"}})
	require.Contains(t, page, `value="kept text"`)
	require.Contains(t, page, `name="interval_seconds" min="60" max="86400" placeholder="300" value="30" aria-invalid="true"`)
	resp, page = post("/ui/capacity/watches", url.Values{"kind": {"service"}, "service_id": {svc.ID}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")
	require.Contains(t, page, "expired or came from another site")
	var watches int
	require.NoError(t, env.DB.Get(&watches, `SELECT count(*) FROM watches WHERE service_id = $1 AND state <> 'deleted'`, svc.ID))
	require.Zero(t, watches, "nothing was created")

	// A watch is created; its first poll puts the service on the map.
	resp, page = post("/ui/capacity/watches", url.Values{"csrf": {token}, "kind": {"service"}, "service_id": {svc.ID}, "description": {"capacity page test"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, page)
	require.Equal(t, "/ui/capacity#watches", resp.Header.Get("Location"))
	var watchID string
	require.NoError(t, env.DB.Get(&watchID, `SELECT id FROM watches WHERE description = 'capacity page test'`))
	feedStatus := func(c *assert.CollectT) string {
		_, raw := ndRaw(t, s, "GET", "/ui/capacity/statuses", "", "", "", "Cookie", nurse)
		var feed capacityFeed
		if !assert.NoError(c, json.Unmarshal(raw, &feed)) {
			return ""
		}
		for _, sv := range feed.Services {
			if sv.ID == svc.ID {
				return sv.Status + "/" + sv.Colour
			}
		}
		return ""
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, "HIGH/green", feedStatus(c))
	}, 20*time.Second, 200*time.Millisecond)
	_, body = ndRaw(t, s, "GET", "/ui/capacity", "", "", "", "Cookie", nurse)
	require.Contains(t, string(body), `"id":"`+svc.ID+`"`, "the map's data has the service")
	require.Contains(t, string(body), `data-status="`+svc.ID+`">HIGH</span>`, "the table too")

	// The directory changes; pausing (the form) and resuming polls at once.
	require.NoError(t, sim.SetCapacity(svc.ID, directory.CapacityLow, "nurse.b"))
	wpath := "/ui/capacity/watches/" + watchID
	resp, page = post(wpath+"/pause", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, page)
	resp, page = post(wpath+"/pause", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, page, "already paused")
	require.Contains(t, page, `<form method="post" action="`+wpath+`/resume">`, "the row offers Resume")
	resp, _ = post(wpath+"/resume", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, "LOW/yellow", feedStatus(c))
	}, 20*time.Second, 200*time.Millisecond)
	_, body = ndRaw(t, s, "GET", "/ui/capacity", "", "", "", "Cookie", nurse)
	page = string(body)
	notHigh := page[strings.Index(page, `id="nothigh-h"`):strings.Index(page, `id="changes-h"`)]
	require.Contains(t, notHigh, svc.Name)
	require.Contains(t, notHigh, "nurse.b")
	changes := page[strings.Index(page, `id="changes-h"`):strings.Index(page, `id="watches-h"`)]
	require.Contains(t, changes, "change: HIGH → LOW")

	// Interval: refused out of range, inline in the row; then changed.
	resp, page = post(wpath+"/interval", url.Values{"csrf": {token}, "interval_seconds": {"10"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, page, "the interval seconds must be 60 to 86400.")
	resp, _ = post(wpath+"/interval", url.Values{"csrf": {token}, "interval_seconds": {"120"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var interval int
	require.NoError(t, env.DB.Get(&interval, `SELECT interval_seconds FROM watches WHERE id = $1`, watchID))
	require.Equal(t, 120, interval)

	// Delete needs the confirmation.
	resp, page = post(wpath+"/delete", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, page, "the confirm box must be ticked")
	resp, _ = post(wpath+"/delete", url.Values{"csrf": {token}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var state string
	require.NoError(t, env.DB.Get(&state, `SELECT state FROM watches WHERE id = $1`, watchID))
	require.Equal(t, "deleted", state)
	resp, _ = post(wpath+"/delete", url.Values{"csrf": {token}, "confirm": {"yes"}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = post("/ui/capacity/watches/not-a-uuid/pause", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = post("/ui/capacity/watches/"+watchID+"/explode", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestConsoleCapacity_ServesLeafletCompressedAndCached checks the page's
// files: Leaflet gzipped for browsers that accept it and cached for a year,
// the page script revalidated, and nothing else under the Leaflet path.
func TestConsoleCapacity_ServesLeafletCompressedAndCached(t *testing.T) {
	s := startStack(t)
	resp, plain := ndRaw(t, s, "GET", "/ui/static/leaflet/leaflet.js", "", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(plain), "Leaflet 1.9.4")
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
	require.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"))
	resp, gz := ndRaw(t, s, "GET", "/ui/static/leaflet/leaflet.js", "", "", "", "Accept-Encoding", "gzip, br")
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	require.Less(t, len(gz), len(plain)/2)
	t.Logf("leaflet.js: %d bytes, %d gzipped", len(plain), len(gz))
	for path, ctype := range map[string]string{
		"/ui/static/leaflet/leaflet.css":            "text/css; charset=utf-8",
		"/ui/static/leaflet/images/layers.png":      "image/png",
		"/ui/static/leaflet/LICENSE":                "text/plain; charset=utf-8",
		"/ui/static/capacity.js":                    "text/javascript; charset=utf-8",
		"/ui/static/capacity.css":                   "text/css; charset=utf-8",
		"/ui/static/leaflet/images/marker-icon.png": "image/png",
	} {
		resp, _ := ndRaw(t, s, "GET", path, "", "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
	}
	resp, _ = ndRaw(t, s, "GET", "/ui/static/capacity.js", "", "", "")
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	for _, path := range []string{"/ui/static/leaflet/nope.js", "/ui/static/leaflet/../console.js", "/ui/static/leaflet/"} {
		resp, _ := ndRaw(t, s, "GET", path, "", "", "")
		require.NotEqual(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, _ = ndRaw(t, s, "GET", "/ui/capacity", "", "", "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the page needs a session")
}
