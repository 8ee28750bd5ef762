//go:build integration

package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

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
	stack := startConsoleStack(t, "devconsole")
	base := stack.APIURL
	password := stack.password

	// n01 is the only nurse on call for the next hours, so she gets the
	// falls the test raises.
	charge := login(t, base, "c01", password)
	now := time.Now().UTC()
	call(t, base, "POST", "/v1/oncall/overrides", charge, fmt.Sprintf(`{"role":"NURSE","staff_id":"N01","starts_at":%q,"ends_at":%q,"reason":"console test"}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(3*time.Hour).Format(time.RFC3339)), http.StatusCreated, nil)
	admin := login(t, base, "a01", password)
	raise := func(room string) api.AlertResponse {
		return raiseFall(t, base, admin, fakeMRN(), room)
	}

	b := stack.openBrowser(t)
	signIn := func(user string) {
		t.Helper()
		b.signIn("/", user)
		b.waitText("My work after signing in as "+user, func(s string) bool {
			return strings.Contains(s, "Sign out") && strings.Contains(s, "Assigned to me")
		})
		loc, err := chromedp.Run(b.tab, chromedp.Location())
		require.NoError(t, err)
		require.Equal(t, base+"/ui/", loc, "sign-in lands on My work")
	}

	// resolvedCounts reads the metrics page's count of acknowledged and
	// resolved incidents of the last 24 hours.
	resolvedCounts := func() (acked, resolved string) {
		t.Helper()
		b.navigate(base + "/ui/metrics?days=1")
		b.waitText("the metrics page", func(s string) bool { return strings.Contains(s, "Time to resolve (MTTR)") })
		acked, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`#mtta-count`)))
		require.NoError(t, err)
		resolved, err = chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`#mttr-count`)))
		require.NoError(t, err)
		return acked, resolved
	}

	// 1. The nurse signs in and lands on My work, with nothing yet; the
	// metrics count no acknowledged or resolved incident.
	signIn("n01")
	acked, resolved := resolvedCounts()
	require.Equal(t, []string{"0", "0"}, []string{acked, resolved}, "metrics before the first incident")
	b.navigate(base + "/ui/")
	b.measure("My work")
	b.checkConsole("My work")

	// 2. A fall is raised through the API and arrives live: the list, the
	// badge and the tab title change without a reload. A click first lets
	// the page play its tone (browsers allow sound after a gesture).
	require.NoError(t, chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(`h1`))))
	postedAt := time.Now()
	fall := raise("TEST-ROOM-A")
	incidentCard := `#i-` + fall.IncidentID
	b.waitText("the fall arriving live on My work", func(s string) bool {
		return strings.Contains(s, "TEST-ROOM-A") && strings.Contains(s, "Acknowledge")
	})
	title, err := chromedp.Run(b.tab, chromedp.Title())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(title, "(1) "), "the tab title counts the new page: %q", title)
	badge, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`#badge`)))
	require.NoError(t, err)
	require.Equal(t, "1 new", badge)
	updatedAt, err := chromedp.Run(b.tab, chromedp.Evaluate[float64](`window.vigilUpdatedAt || 0`))
	require.NoError(t, err)
	refresh, err := chromedp.Run(b.tab, chromedp.Evaluate[float64](`window.vigilLastUpdateMs || 0`))
	require.NoError(t, err)
	t.Logf("live update: alert posted to list refreshed in %d ms (list refetch %.0f ms)",
		int64(updatedAt)-postedAt.UnixMilli(), refresh)
	b.shoot("my-work")
	b.checkConsole("the live update")

	// The same page at a phone's width.
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(390, 844)))
	b.shoot("my-work-phone")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(1280, 900)))

	// 3. Acknowledge, then resolve with notes (the forms post without
	// any script).
	require.NoError(t, chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(incidentCard+` form[action$="/acknowledge"] button`))))
	require.NoError(t, chromedp.Do(b.tab, chromedp.WaitVisible(chromedp.CSS(incidentCard+` form[action$="/resolve"] textarea`))))
	text := b.waitText("the acknowledged incident", func(s string) bool { return strings.Contains(s, "ACKNOWLEDGED") })
	require.Contains(t, text, "Start")
	require.NoError(t, chromedp.Do(b.tab,
		chromedp.SendKeys(chromedp.CSS(incidentCard+` form[action$="/resolve"] textarea`), "Helped back to bed, no injury."),
		chromedp.Click(chromedp.CSS(incidentCard+` form[action$="/resolve"] button`)),
	))
	b.waitText("My work without the resolved incident", func(s string) bool {
		return strings.Contains(s, "Nothing is assigned to you.")
	})
	b.checkConsole("acknowledge and resolve")

	// 4. The detail page shows the timeline and links to the run.
	b.navigate(base + "/ui/incidents/" + fall.IncidentID)
	text = b.waitText("the incident's timeline", func(s string) bool {
		return strings.Contains(s, "Timeline") && strings.Contains(s, "RESOLVED")
	})
	for _, want := range []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "Helped back to bed, no injury.", "in the Temporal Web UI"} {
		require.Contains(t, text, want)
	}
	href, err := chromedp.Run(b.tab, chromedp.Evaluate[string](`document.querySelector('a[href*="/workflows/"]').href`))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(href, stack.TemporalUIURL+"/namespaces/"), href)
	require.Contains(t, text, "Pages", "the pages table")
	require.Contains(t, text, "In-app", "the in-app page and its outcome")
	b.measure("incident detail")
	b.shoot("incident")
	b.checkConsole("the incident detail")

	// The metrics now count it as acknowledged and resolved.
	acked, resolved = resolvedCounts()
	require.Equal(t, []string{"1", "1"}, []string{acked, resolved}, "metrics after the resolution")
	b.checkConsole("the metrics page")

	// 5. A second fall; the charge nurse's board shows it (not the
	// resolved one), and she reassigns it to N02.
	second := raise("TEST-ROOM-B")
	b.click(`nav button[type=submit]`)
	b.waitText("the sign-in form after signing out", func(s string) bool { return strings.Contains(s, "Password") })
	signIn("c01")
	b.navigate(base + "/ui/board")
	text = b.waitText("the board with the second fall", func(s string) bool {
		return strings.Contains(s, "Incident board") && strings.Contains(s, "TEST-ROOM-B")
	})
	require.NotContains(t, text, "TEST-ROOM-A", "the resolved incident left the board")
	b.measure("board")
	row := `#b-` + second.IncidentID
	// The next escalation counts down live (the run's state query gives
	// the due time).
	due, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(row+` [data-due]`)))
	require.NoError(t, err)
	require.Regexp(t, `^(in (\d+m )?\d+s|due now)$`, due)
	time.Sleep(1100 * time.Millisecond)
	later, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(row+` [data-due]`)))
	require.NoError(t, err)
	require.NotEqual(t, due, later, "the countdown ticks")
	require.NoError(t, chromedp.Do(b.tab,
		chromedp.SendKeys(chromedp.CSS(row+` input[name=staff_id]`), "N02"),
		chromedp.Click(chromedp.CSS(row+` button`)),
	))
	b.waitText("the board after the reassignment", func(s string) bool {
		return strings.Contains(s, "(N02)")
	})
	b.shoot("board")
	b.navigate(base + "/ui/board?severity=HIGH&status=ASSIGNED")
	b.waitText("the filtered board", func(s string) bool { return strings.Contains(s, "TEST-ROOM-B") })
	b.checkConsole("the board")
}
