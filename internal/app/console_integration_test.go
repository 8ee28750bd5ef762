//go:build integration

package app_test

import (
	"context"
	"fmt"
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

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

// pagePerf is a page's first load as the browser's Performance API saw it.
type pagePerf struct {
	// Interactive and Load are milliseconds from the navigation's start to
	// domInteractive and to the end of the load event.
	Interactive float64 `json:"interactive"`
	Load        float64 `json:"load"`
	// Bytes are the transferred bytes of the document and every resource
	// (headers included); Resources counts the resources.
	Bytes     float64 `json:"bytes"`
	Resources int     `json:"resources"`
}

// measurePage reads the Performance API's navigation and resource entries
// of the page in the tab, once its load event has ended.
const measurePage = `(() => {
	const n = performance.getEntriesByType('navigation')[0];
	if (!n || n.loadEventEnd === 0) { return null; }
	const rs = performance.getEntriesByType('resource');
	let bytes = n.transferSize;
	for (const r of rs) { bytes += r.transferSize; }
	return {interactive: n.domInteractive - n.startTime, load: n.loadEventEnd - n.startTime, bytes: bytes, resources: rs.length};
})()`

// TestConsole_NurseWorksAnIncidentLiveInChromium drives the staff console
// of `vigil dev` in headless Chromium: a nurse signs in, an alert posted
// through the API appears live on My work (the tab title counts it), she
// acknowledges and resolves it with notes, the detail page shows the
// timeline and the pages with their outcome and links to the run, the
// metrics page counts it, and a charge nurse sees the board and
// reassigns an incident there, under a live countdown to its next
// escalation. Any browser console error fails the test.
// Each page is screenshotted into VIGIL_SCREENSHOTS_DIR when set, and the
// first load (time, bytes) of each page and the live update's latency are
// logged.
func TestConsole_NurseWorksAnIncidentLiveInChromium(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "devconsole")
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

	// n01 is the only nurse on call for the next hours, so she gets the
	// falls the test raises.
	charge := login(t, base, "c01", password)
	now := time.Now().UTC()
	call(t, base, "POST", "/v1/oncall/overrides", charge, fmt.Sprintf(`{"role":"NURSE","staff_id":"N01","starts_at":%q,"ends_at":%q,"reason":"console test"}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(3*time.Hour).Format(time.RFC3339)), http.StatusCreated, nil)
	admin := login(t, base, "a01", password)
	raise := func(room string) api.AlertResponse {
		var created api.AlertResponse
		call(t, base, "POST", "/v1/alerts", admin, `{"alert_type":"FALL_DETECTED","patient_id":"TEST-MRN-`+strings.ToUpper(uuid.NewString()[:8])+
			`","room":"`+room+`","value":"fall","source":"bed-sensor","observed_at":"`+time.Now().UTC().Format(time.RFC3339)+`"}`,
			http.StatusCreated, &created)
		return created
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
	signIn := func(user string) {
		t.Helper()
		navigate(t, browser, base+"/")
		require.NoError(t, chromedp.Do(browser,
			chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=login]`), user),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
			chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		))
		waitPageText(t, browser, "My work after signing in as "+user, func(s string) bool {
			return strings.Contains(s, "Sign out") && strings.Contains(s, "Assigned to me")
		})
		loc, err := chromedp.Run(browser, chromedp.Location())
		require.NoError(t, err)
		require.Equal(t, base+"/ui/", loc, "sign-in lands on My work")
	}

	// resolvedCounts reads the metrics page's count of acknowledged and
	// resolved incidents of the last 24 hours.
	resolvedCounts := func() (acked, resolved string) {
		t.Helper()
		navigate(t, browser, base+"/ui/metrics?days=1")
		waitPageText(t, browser, "the metrics page", func(s string) bool { return strings.Contains(s, "Time to resolve (MTTR)") })
		acked, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#mtta-count`)))
		require.NoError(t, err)
		resolved, err = chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#mttr-count`)))
		require.NoError(t, err)
		return acked, resolved
	}

	// 1. The nurse signs in and lands on My work, with nothing yet; the
	// metrics count no acknowledged or resolved incident.
	signIn("n01")
	acked, resolved := resolvedCounts()
	require.Equal(t, []string{"0", "0"}, []string{acked, resolved}, "metrics before the first incident")
	navigate(t, browser, base+"/ui/")
	measure("My work")
	checkConsole("My work")

	// 2. A fall is raised through the API and arrives live: the list, the
	// badge and the tab title change without a reload. A click first lets
	// the page play its tone (browsers allow sound after a gesture).
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`h1`))))
	postedAt := time.Now()
	fall := raise("TEST-ROOM-A")
	incidentCard := `#i-` + fall.IncidentID
	waitPageText(t, browser, "the fall arriving live on My work", func(s string) bool {
		return strings.Contains(s, "TEST-ROOM-A") && strings.Contains(s, "Acknowledge")
	})
	title, err := chromedp.Run(browser, chromedp.Title())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(title, "(1) "), "the tab title counts the new page: %q", title)
	badge, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#badge`)))
	require.NoError(t, err)
	require.Equal(t, "1 new", badge)
	updatedAt, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.vigilUpdatedAt || 0`))
	require.NoError(t, err)
	refresh, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.vigilLastUpdateMs || 0`))
	require.NoError(t, err)
	t.Logf("live update: alert posted to list refreshed in %d ms (list refetch %.0f ms)",
		int64(updatedAt)-postedAt.UnixMilli(), refresh)
	shoot("my-work")
	checkConsole("the live update")

	// The same page at a phone's width.
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(390, 844)))
	shoot("my-work-phone")
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(1280, 900)))

	// 3. Acknowledge, then resolve with notes (the forms post without
	// any script).
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(incidentCard+` form[action$="/acknowledge"] button`))))
	require.NoError(t, chromedp.Do(browser, chromedp.WaitVisible(chromedp.CSS(incidentCard+` form[action$="/resolve"] textarea`))))
	text := waitPageText(t, browser, "the acknowledged incident", func(s string) bool { return strings.Contains(s, "ACKNOWLEDGED") })
	require.Contains(t, text, "Start")
	require.NoError(t, chromedp.Do(browser,
		chromedp.SendKeys(chromedp.CSS(incidentCard+` form[action$="/resolve"] textarea`), "Helped back to bed, no injury."),
		chromedp.Click(chromedp.CSS(incidentCard+` form[action$="/resolve"] button`)),
	))
	waitPageText(t, browser, "My work without the resolved incident", func(s string) bool {
		return strings.Contains(s, "Nothing is assigned to you.")
	})
	checkConsole("acknowledge and resolve")

	// 4. The detail page shows the timeline and links to the run.
	navigate(t, browser, base+"/ui/incidents/"+fall.IncidentID)
	text = waitPageText(t, browser, "the incident's timeline", func(s string) bool {
		return strings.Contains(s, "Timeline") && strings.Contains(s, "RESOLVED")
	})
	for _, want := range []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "Helped back to bed, no injury.", "in the Temporal Web UI"} {
		require.Contains(t, text, want)
	}
	href, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('a[href*="/workflows/"]').href`))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(href, stack.TemporalUIURL+"/namespaces/"), href)
	require.Contains(t, text, "Pages", "the pages table")
	require.Contains(t, text, "In-app", "the in-app page and its outcome")
	measure("incident detail")
	shoot("incident")
	checkConsole("the incident detail")

	// The metrics now count it as acknowledged and resolved.
	acked, resolved = resolvedCounts()
	require.Equal(t, []string{"1", "1"}, []string{acked, resolved}, "metrics after the resolution")
	checkConsole("the metrics page")

	// 5. A second fall; the charge nurse's board shows it (not the
	// resolved one), and she reassigns it to N02.
	second := raise("TEST-ROOM-B")
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`nav button[type=submit]`))))
	waitPageText(t, browser, "the sign-in form after signing out", func(s string) bool { return strings.Contains(s, "Password") })
	signIn("c01")
	navigate(t, browser, base+"/ui/board")
	text = waitPageText(t, browser, "the board with the second fall", func(s string) bool {
		return strings.Contains(s, "Incident board") && strings.Contains(s, "TEST-ROOM-B")
	})
	require.NotContains(t, text, "TEST-ROOM-A", "the resolved incident left the board")
	measure("board")
	row := `#b-` + second.IncidentID
	// The next escalation counts down live (the run's state query gives
	// the due time).
	due, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(row+` [data-due]`)))
	require.NoError(t, err)
	require.Regexp(t, `^(in (\d+m )?\d+s|due now)$`, due)
	time.Sleep(1100 * time.Millisecond)
	later, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(row+` [data-due]`)))
	require.NoError(t, err)
	require.NotEqual(t, due, later, "the countdown ticks")
	require.NoError(t, chromedp.Do(browser,
		chromedp.SendKeys(chromedp.CSS(row+` input[name=staff_id]`), "N02"),
		chromedp.Click(chromedp.CSS(row+` button`)),
	))
	waitPageText(t, browser, "the board after the reassignment", func(s string) bool {
		return strings.Contains(s, "(N02)")
	})
	shoot("board")
	navigate(t, browser, base+"/ui/board?severity=HIGH&status=ASSIGNED")
	waitPageText(t, browser, "the filtered board", func(s string) bool { return strings.Contains(s, "TEST-ROOM-B") })
	checkConsole("the board")
}
