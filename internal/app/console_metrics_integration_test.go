//go:build integration

package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
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
	stack := startConsoleStack(t, "devmetrics")
	base := stack.APIURL
	password := stack.password

	// Two falls, so the metrics have incidents to draw.
	admin := login(t, base, "a01", password)
	for _, room := range []string{"TEST-ROOM-M1", "TEST-ROOM-M2"} {
		raiseFall(t, base, admin, fakeMRN(), room)
	}

	b := stack.openBrowser(t)

	// Sign in as the admin.
	b.signIn("/ui/nodes", "a01")
	b.waitText("the node list after signing in", func(s string) bool {
		return strings.Contains(s, "Sign out") && strings.Contains(s, "Daily error rate")
	})

	// 1. The node list: the demo fleet, the heatmap drawn, times with the
	// zone's abbreviation.
	b.navigate(base + "/ui/nodes")
	text := b.waitText("the demo fleet", func(s string) bool { return strings.Contains(s, "nodes · computed") })
	require.Regexp(t, `computed \d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3,4}`, text)
	require.Eventually(t, func() bool {
		w, err := chromedp.Run(b.tab, chromedp.Evaluate[int](`(() => { const i = document.querySelector('img.heatmap'); return i && i.complete ? i.naturalWidth : 0; })()`))
		return err == nil && w > 0
	}, 30*time.Second, 100*time.Millisecond, "the heatmap loads")
	b.measure("nodes")
	rows, err := chromedp.Run(b.tab, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tbody tr').length`))
	require.NoError(t, err)
	t.Logf("node list: %d rows", rows)
	b.shoot("nodes")
	b.checkConsole("the node list")

	// 2. The table refreshes in place (the script runs at once when the tab
	// becomes visible again, as here, and every 30 s).
	_, err = chromedp.Run(b.tab, chromedp.Evaluate[bool](`window.scrollTo(0, 200); document.dispatchEvent(new Event('visibilitychange'))`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		at, err := chromedp.Run(b.tab, chromedp.Evaluate[float64](`window.vigilRefreshedAt || 0`))
		return err == nil && at > 0
	}, 20*time.Second, 100*time.Millisecond, "the table refreshes")
	rows2, err := chromedp.Run(b.tab, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tbody tr').length`))
	require.NoError(t, err)
	require.Equal(t, rows, rows2)
	b.checkConsole("the refresh")

	// 3. Sort by status through the column header and filter with the
	// form (plain GETs: the query is the page's state).
	require.NoError(t, chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(`th a[href*="sort=status"]`))))
	b.waitText("the list sorted by status", func(s string) bool { return strings.Contains(s, "Broker nodes") })
	loc, err := chromedp.Run(b.tab, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, base+"/ui/nodes?sort=status", loc)
	require.NoError(t, chromedp.Do(b.tab,
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "no such node name"),
		chromedp.Submit(chromedp.CSS(`input[name=q]`)),
	))
	b.waitText("the empty filtered list", func(s string) bool { return strings.Contains(s, "No node matches these filters.") })
	b.checkConsole("sorting and filtering")

	// 4. The admin rescans the fleet and comes back to the same list.
	require.NoError(t, chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(`form[action="/ui/nodes/scan"] button`))))
	b.waitText("the rescan's notice", func(s string) bool { return strings.Contains(s, "Fleet scan started") })
	loc, err = chromedp.Run(b.tab, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "q=no+such+node+name")
	b.checkConsole("the rescan")

	// 5. The metrics page: five charts, each with its table.
	b.navigate(base + "/ui/metrics")
	text = b.waitText("the metrics page", func(s string) bool { return strings.Contains(s, "Workload per staff member") })
	require.Contains(t, text, "Time to acknowledge (MTTA)")
	charts, err := chromedp.Run(b.tab, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart[role=img]').length`))
	require.NoError(t, err)
	require.Equal(t, 5, charts)
	width, err := chromedp.Run(b.tab, chromedp.Evaluate[float64](`document.querySelector('svg.chart').getBoundingClientRect().width`))
	require.NoError(t, err)
	require.Greater(t, width, 300.0, "the charts are drawn")
	b.measure("metrics")
	b.shoot("metrics")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(390, 844)))
	b.shoot("metrics-phone")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(1280, 900)))
	b.navigate(base + "/ui/metrics?days=1")
	b.waitText("the last 24 hours", func(s string) bool { return strings.Contains(s, "Incidents opened per hour") })
	b.checkConsole("the metrics page")
}
