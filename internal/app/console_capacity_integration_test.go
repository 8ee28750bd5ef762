//go:build integration

package app_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// tileServer serves the same small PNG for every tile, so the map has
// tiles without a request leaving the machine; it counts the requests.
func tileServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for x := range 256 {
		for y := range 256 {
			img.Set(x, y, color.RGBA{R: 0xe8, G: 0xee, B: 0xf2, A: 0xff})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/tiles/{z}/{x}/{y}.png", &hits
}

// TestConsole_CapacityMapFollowsTheDirectoryInChromium opens the Capacity
// page of `vigil dev` (its demo watches on the directory simulator) in
// headless Chromium with tiles from a local server: the demo's services
// are markers coloured by status with the status in their label; a status
// flipped through the simulator's control endpoint reaches the marker and
// the table without a reload once the watch polls. Any browser console
// error fails the test; the first load is measured and screenshots go to
// VIGIL_SCREENSHOTS_DIR.
func TestConsole_CapacityMapFollowsTheDirectoryInChromium(t *testing.T) {
	tiles, tileHits := tileServer(t)
	stack := startConsoleStack(t, "devcapacity", map[string]string{"VIGIL_MAP_TILE_URL": tiles})
	base := stack.APIURL
	password := stack.password
	const serviceID = "2000001" // Leeds General Infirmary ED, a demo watch

	// The demo seeded its watches; their first polls put the services on
	// the map.
	charge := login(t, base, "c01", password)
	var watches struct {
		Items []struct {
			ID, ServiceID, Description string
		} `json:"items"`
	}
	call(t, base, "GET", "/v1/watches", charge, "", http.StatusOK, &watches)
	require.Len(t, watches.Items, 4, "the demo's watches")
	watchID := ""
	for _, w := range watches.Items {
		if strings.Contains(w.Description, "Leeds General") {
			watchID = w.ID
		}
	}
	require.NotEmpty(t, watchID)
	require.Eventually(t, func() bool {
		var cov struct {
			Services []struct {
				ServiceID string `json:"service_id"`
			} `json:"services"`
		}
		call(t, base, "GET", "/v1/coverage", charge, "", http.StatusOK, &cov)
		for _, s := range cov.Services {
			if s.ServiceID == serviceID {
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "the demo watch's first poll")

	b := stack.openBrowser(t)

	// A charge nurse signs in and opens the Capacity page.
	b.signIn("/ui/login?next=/ui/capacity", "c01")
	b.waitText("the Capacity page", func(s string) bool {
		return strings.Contains(s, "Map of the watched services") && strings.Contains(s, "Recent changes")
	})
	marker := `document.querySelector('path.svc-` + serviceID + `')`
	b.measure("Capacity")
	assets, err := chromedp.Run(b.tab, chromedp.Evaluate[struct {
		Leaflet float64 `json:"leaflet"`
		Tiles   int     `json:"tiles"`
	}](`(() => {
		let leaflet = 0, tiles = 0;
		for (const r of performance.getEntriesByType('resource')) {
			if (r.name.includes('/leaflet/')) { leaflet += r.transferSize; }
			if (r.name.includes('/tiles/')) { tiles++; }
		}
		return {leaflet: leaflet, tiles: tiles};
	})()`))
	require.NoError(t, err)
	t.Logf("page Capacity: Leaflet %.1f KB transferred; %d tiles (local server saw %d requests)", assets.Leaflet/1024, assets.Tiles, tileHits.Load())

	// The markers: one per demo service on the map, coloured, with the
	// status in their label; the attribution is shown.
	// A demo watch that had not polled when the page loaded gets its
	// marker at the next refresh (every 10 s).
	require.Eventually(t, func() bool {
		ok, err := chromedp.Run(b.tab, chromedp.Evaluate[bool](`document.querySelectorAll('path.svc').length >= 3 && `+marker+` !== null`))
		return err == nil && ok
	}, 30*time.Second, 200*time.Millisecond, "a marker for each demo service")
	before, err := chromedp.Run(b.tab, chromedp.Evaluate[string](marker+`.getAttribute('data-capacity')`))
	require.NoError(t, err)
	fill, err := chromedp.Run(b.tab, chromedp.Evaluate[string](marker+`.getAttribute('fill')`))
	require.NoError(t, err)
	wantFill := map[string]string{"HIGH": "#2e7d32", "LOW": "#fbc02d", "NONE": "#c62828", "RESET": "#757575"}
	require.Equal(t, wantFill[before], fill, "marker colour of %s", before)
	label, err := chromedp.Run(b.tab, chromedp.Evaluate[string](marker+`.getAttribute('aria-label')`))
	require.NoError(t, err)
	require.Contains(t, label, "Leeds General Infirmary")
	require.Contains(t, label, before)
	text := b.waitText("the attribution", func(s string) bool { return strings.Contains(s, "OpenStreetMap contributors") })
	require.Contains(t, text, "Not at HIGH")
	require.Positive(t, tileHits.Load(), "the tiles came from the configured server")
	b.shoot("capacity")
	b.checkConsole("the Capacity page")

	// The directory changes the status (the simulator's control
	// endpoint); changing the watch's interval makes it poll at once, and
	// the page's next refresh recolours the marker and the table without a
	// reload.
	target := "NONE"
	if before == "NONE" {
		target = "LOW"
	}
	_, err = chromedp.Run(b.tab, chromedp.Evaluate[int](`window.vigilNoReload = 1`))
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, stack.DirectoryURL+"/sim/services/"+serviceID+"/capacity",
		strings.NewReader(`{"capacity":"`+target+`","by":"browser.test"}`))
	require.NoError(t, err)
	req.SetBasicAuth("capmon", "capmon-demo")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	flipped := time.Now()
	call(t, base, "PATCH", "/v1/watches/"+watchID, charge, `{"interval_seconds":60}`, http.StatusOK, nil)
	require.Eventually(t, func() bool {
		got, err := chromedp.Run(b.tab, chromedp.Evaluate[string](marker+`.getAttribute('data-capacity') + ' ' + `+marker+`.getAttribute('fill')`))
		return err == nil && got == target+" "+wantFill[target]
	}, 45*time.Second, 250*time.Millisecond, "the marker turns %s", target)
	t.Logf("status flipped in the directory to marker recoloured: %d ms (watch poll + page refresh every 10 s)", time.Since(flipped).Milliseconds())
	still, err := chromedp.Run(b.tab, chromedp.Evaluate[int](`window.vigilNoReload || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, still, "no reload")
	badge, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`[data-status="`+serviceID+`"]`)))
	require.NoError(t, err)
	require.Equal(t, target, badge)
	label, err = chromedp.Run(b.tab, chromedp.Evaluate[string](marker+`.getAttribute('aria-label')`))
	require.NoError(t, err)
	require.Contains(t, label, target)
	b.shoot("capacity-flipped")
	b.checkConsole("the live update")

	// The same page at a phone's width.
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(390, 844)))
	b.shoot("capacity-phone")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(1280, 900)))
	b.checkConsole("the phone width")
}
