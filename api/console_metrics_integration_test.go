//go:build integration

package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConsoleMetrics_ChartsTablesAndRights: the metrics page draws its
// charts as inline SVG with accessible names and a data table each, for
// every window; a bad window is a 400 naming days; any signed-in staff
// member may see it (as GET /v1/incidents/metrics), nobody else.
func TestConsoleMetrics_ChartsTablesAndRights(t *testing.T) {
	s := startStack(t)
	now := time.Now().UTC()
	// Two incidents of the last hours, assigned to N01 and D01; the shared
	// database may hold more, so the test checks what these add, not
	// totals.
	incReadInsert(t,
		incReadRow{Opened: now.Add(-2 * time.Hour), Status: "RESOLVED", Severity: "CRITICAL", AlertType: "FALL_DETECTED", AssignedTo: "N01",
			Assign: 5 * time.Second, Page: 6 * time.Second, Ack: 40 * time.Second, Resolve: 20 * time.Minute, ResolvedBy: "N01", ResolutionNotes: "Back to bed, no injury."},
		incReadRow{Opened: now.Add(-3 * time.Hour), Status: "ASSIGNED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "D01",
			Assign: 5 * time.Second, Page: 6 * time.Second, Ack: incReadNever, Resolve: incReadNever},
	)
	nurse := consoleSignIn(t, s, "n01")

	// Not signed in: to the sign-in form.
	resp, _ := ndRaw(t, s, "GET", "/ui/metrics", "", "", "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/login?next="+url.QueryEscape("/ui/metrics"), resp.Header.Get("Location"))

	tests := []struct {
		query, bucketHeader string
	}{
		{"", "Day"},
		{"?days=1", "Hour"},
		{"?days=7", "Day"},
		{"?days=30", "Day"},
		{"?days=90", "Day"},
	}
	for _, tt := range tests {
		t.Run("window"+tt.query, func(t *testing.T) {
			resp, body := ndRaw(t, s, "GET", "/ui/metrics"+tt.query, "", "", "", "Cookie", nurse)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			page := string(body)
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
			require.NotContains(t, page, "<script", "the page needs no script")
			require.Contains(t, page, `<a href="/ui/metrics" aria-current="page">Metrics</a>`)
			for _, id := range []string{"opened", "ack", "resolve", "severity", "staff"} {
				require.Contains(t, page, `role="img" aria-labelledby="`+id+`-title `+id+`-desc"`, id)
				require.Contains(t, page, `<title id="`+id+`-title">`, id)
			}
			require.Equal(t, 5, strings.Count(page, "<svg "))
			require.Equal(t, 3, strings.Count(page, "data table</summary>"))
			require.Contains(t, page, `<th scope="col">`+tt.bucketHeader+`</th>`)
			require.Contains(t, page, "Time to acknowledge (MTTA)")
			require.Contains(t, page, `<span class="badge red">CRITICAL</span>`)
			require.Contains(t, page, `Amelia Hart <span class="muted">(N01)</span>`, "N01's workload row")
			require.Contains(t, page, "(D01)")
			require.NotContains(t, page, "&lt;svg", "charts are markup, not escaped text")
		})
	}

	resp, body := ndRaw(t, s, "GET", "/ui/metrics?days=5", "", "", "", "Cookie", nurse)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "Refused: days must be one of 1, 7, 30 or 90.")
	require.Contains(t, string(body), `<select name="days">`)

	// Charge nurses and admins too; a bearer staff token works as on the
	// other pages.
	for _, login := range []string{"c01", "a01"} {
		resp, _ = ndRaw(t, s, "GET", "/ui/metrics", "", "", "", "Cookie", consoleSignIn(t, s, login))
		require.Equal(t, http.StatusOK, resp.StatusCode, login)
	}
	resp, _ = ndRaw(t, s, "GET", "/ui/metrics", s.login(t, "d01"), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
