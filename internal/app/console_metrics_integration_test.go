//go:build integration

package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

// TestConsole_NodesAndMetricsInChromium opens the broker-node list and the
// metrics page of `vigil dev` (demo fleet, broker simulator) in headless
// Chromium as an admin: the node list filters and sorts by its query,
// refreshes its table in place, rescans the fleet with the admin's form
// and draws the heatmap; the metrics page draws its charts. Any browser
// console error (a script, or a CSP refusal) fails the test. Each page is
// screenshotted into VIGIL_SCREENSHOTS_DIR when set, and its first load
// (time, bytes) is logged.
func TestConsole_NodesAndMetricsInChromium(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "devmetrics")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DATABASE_URL":                 dsn,
			"VIGIL_HTTP_ADDR":              "127.0.0.1:0",
			"VIGIL_DEV_DATA_DIR":           t.TempDir(),
			"VIGIL_DEMO":                   "true",
			"VIGIL_DEMO_ALERTS_PER_MINUTE": "0",
		}[k]
		return v, ok
	})
	require.NoError(t, err)
	anyPorts(&cfg)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := app.StartDev(ctx, cfg, logger)
	require.NoError(t, err)
	t.Cleanup(stack.Stop)
	base := stack.APIURL
	password := cfg.Dev.DemoPassword.Reveal()

	// Two falls, so the metrics have incidents to draw.
	admin := login(t, base, "a01", password)
	for _, room := range []string{"TEST-ROOM-M1", "TEST-ROOM-M2"} {
		call(t, base, "POST", "/v1/alerts", admin, `{"alert_type":"FALL_DETECTED","patient_id":"TEST-MRN-`+strings.ToUpper(uuid.NewString()[:8])+
			`","room":"`+room+`","value":"fall","source":"bed-sensor","observed_at":"`+time.Now().UTC().Format(time.RFC3339)+`"}`,
			http.StatusCreated, nil)
	}

	browser := newBrowser(t, chromium)
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(browser)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	checkConsole := func(where string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, problems, "browser console errors by %s", where)
	}
	measure := func(page string) {
		t.Helper()
		var p *pagePerf
		require.Eventually(t, func() bool {
			p, err = chromedp.Run(browser, chromedp.Evaluate[*pagePerf](measurePage))
			return err == nil && p != nil
		}, 10*time.Second, 50*time.Millisecond)
		t.Logf("page %s: first load %.0f ms (interactive %.0f ms), %.1f KB in %d resources + the document",
			page, p.Load, p.Interactive, p.Bytes/1024, p.Resources)
	}
	shoot := func(name string) {
		t.Helper()
		dir := os.Getenv("VIGIL_SCREENSHOTS_DIR")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		path := filepath.Join(dir, "console-"+name+".png")
		require.NoError(t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a screenshot for the docs
		t.Logf("screenshot: %s", path)
	}

	// Sign in as the admin.
	navigate(t, browser, base+"/ui/nodes")
	require.NoError(t, chromedp.Do(browser,
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "a01"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
	))
	waitPageText(t, browser, "the node list after signing in", func(s string) bool {
		return strings.Contains(s, "Sign out") && strings.Contains(s, "Daily error rate")
	})

	// 1. The node list: the demo fleet, the heatmap drawn, times with the
	// zone's abbreviation.
	navigate(t, browser, base+"/ui/nodes")
	text := waitPageText(t, browser, "the demo fleet", func(s string) bool { return strings.Contains(s, "nodes · computed") })
	require.Regexp(t, `computed \d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3,4}`, text)
	require.Eventually(t, func() bool {
		w, err := chromedp.Run(browser, chromedp.Evaluate[int](`(() => { const i = document.querySelector('img.heatmap'); return i && i.complete ? i.naturalWidth : 0; })()`))
		return err == nil && w > 0
	}, 30*time.Second, 100*time.Millisecond, "the heatmap loads")
	measure("nodes")
	rows, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tbody tr').length`))
	require.NoError(t, err)
	t.Logf("node list: %d rows", rows)
	shoot("nodes")
	checkConsole("the node list")

	// 2. The table refreshes in place (the script runs at once when the tab
	// becomes visible again, as here, and every 30 s).
	_, err = chromedp.Run(browser, chromedp.Evaluate[bool](`window.scrollTo(0, 200); document.dispatchEvent(new Event('visibilitychange'))`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		at, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.vigilRefreshedAt || 0`))
		return err == nil && at > 0
	}, 20*time.Second, 100*time.Millisecond, "the table refreshes")
	rows2, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tbody tr').length`))
	require.NoError(t, err)
	require.Equal(t, rows, rows2)
	checkConsole("the refresh")

	// 3. Sort by status through the column header and filter with the
	// form (plain GETs: the query is the page's state).
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`th a[href*="sort=status"]`))))
	waitPageText(t, browser, "the list sorted by status", func(s string) bool { return strings.Contains(s, "Broker nodes") })
	loc, err := chromedp.Run(browser, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, base+"/ui/nodes?sort=status", loc)
	require.NoError(t, chromedp.Do(browser,
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "no such node name"),
		chromedp.Submit(chromedp.CSS(`input[name=q]`)),
	))
	waitPageText(t, browser, "the empty filtered list", func(s string) bool { return strings.Contains(s, "No node matches these filters.") })
	checkConsole("sorting and filtering")

	// 4. The admin rescans the fleet and comes back to the same list.
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`form[action="/ui/nodes/scan"] button`))))
	waitPageText(t, browser, "the rescan's notice", func(s string) bool { return strings.Contains(s, "Fleet scan started") })
	loc, err = chromedp.Run(browser, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "q=no+such+node+name")
	checkConsole("the rescan")

	// 5. The metrics page: five charts, each with its table.
	navigate(t, browser, base+"/ui/metrics")
	text = waitPageText(t, browser, "the metrics page", func(s string) bool { return strings.Contains(s, "Workload per staff member") })
	require.Contains(t, text, "Time to acknowledge (MTTA)")
	charts, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart[role=img]').length`))
	require.NoError(t, err)
	require.Equal(t, 5, charts)
	width, err := chromedp.Run(browser, chromedp.Evaluate[float64](`document.querySelector('svg.chart').getBoundingClientRect().width`))
	require.NoError(t, err)
	require.Greater(t, width, 300.0, "the charts are drawn")
	measure("metrics")
	shoot("metrics")
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(390, 844)))
	shoot("metrics-phone")
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(1280, 900)))
	navigate(t, browser, base+"/ui/metrics?days=1")
	waitPageText(t, browser, "the last 24 hours", func(s string) bool { return strings.Contains(s, "Incidents opened per hour") })
	checkConsole("the metrics page")
}
