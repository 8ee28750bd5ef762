//go:build integration

package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/workflows"
)

// TestNodePages_FilterSortZoneRescan: the node list filters by status and
// name and sorts by its URL query, shows times in the hospital's zone,
// links each node to its monitor's run, loads the refresh script under a
// same-origin script policy, and lets admins (only) rescan the fleet with
// a CSRF-checked form that returns to the same list with a notice.
func TestNodePages_FilterSortZoneRescan(t *testing.T) {
	s := startStack(t)
	now := time.Now().UTC().Truncate(time.Second)
	tag := fmt.Sprintf("zq%06d", rand.IntN(1000000))
	type seeded struct {
		id, name, headline string
		contact            time.Time
	}
	nodes := []seeded{
		{ndNewID(t), "Charlie " + tag, "ONLINE", now.Add(-1 * time.Hour)},
		{ndNewID(t), "alpha " + tag, "OFFLINE", now.Add(-72 * time.Hour)},
		{ndNewID(t), "Bravo " + tag, "TESTING", now.Add(-5 * time.Hour)},
	}
	for _, n := range nodes {
		ndExec(t, `INSERT INTO broker_nodes (node_id, client_dn, last_scan_id, last_checked, last_contact, headline, conditions, status_since)
			VALUES ($1, 'CN=x', 'scan-1', $2, $3, $4, $5, $2)`, n.id, now, n.contact, n.headline, pqArray([]string{n.headline}))
		ndExec(t, `INSERT INTO node_settings (node_id, common_name) VALUES ($1, $2)`, n.id, n.name)
	}
	nurse := consoleSignIn(t, s, "n01")
	get := func(session, path string) (*http.Response, string) {
		t.Helper()
		resp, body := ndRaw(t, s, "GET", path, "", "", "", "Cookie", session)
		return resp, string(body)
	}
	// order is the seeded names in the order the page lists them.
	order := func(page string) []string {
		t.Helper()
		var pos []int
		var out []string
		for _, n := range nodes {
			i := strings.Index(page, ">"+n.name+"</a>")
			if i < 0 {
				continue
			}
			j := 0
			for j < len(pos) && pos[j] < i {
				j++
			}
			pos = append(pos[:j], append([]int{i}, pos[j:]...)...)
			out = append(out[:j], append([]string{n.name}, out[j:]...)...)
		}
		return out
	}

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"by name, any case", url.Values{"q": {tag}, "sort": {"name"}}, []string{"alpha " + tag, "Bravo " + tag, "Charlie " + tag}},
		{"by status, worst first", url.Values{"q": {tag}, "sort": {"status"}}, []string{"Bravo " + tag, "alpha " + tag, "Charlie " + tag}},
		{"by last contact, oldest first", url.Values{"q": {strings.ToUpper(tag)}, "sort": {"contact"}}, []string{"alpha " + tag, "Bravo " + tag, "Charlie " + tag}},
		{"one status", url.Values{"q": {tag}, "status": {"OFFLINE"}}, []string{"alpha " + tag}},
		{"empty fields, as the form sends them", url.Values{"q": {tag}, "status": {""}, "sort": {"name"}}, []string{"alpha " + tag, "Bravo " + tag, "Charlie " + tag}},
		{"by node id", url.Values{"q": {nodes[2].id}}, []string{"Bravo " + tag}},
		{"nothing matches", url.Values{"q": {tag + "-none"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := get(nurse, "/ui/nodes?"+tt.query.Encode())
			require.Equal(t, http.StatusOK, resp.StatusCode, page)
			require.Equal(t, tt.want, order(page))
			if tt.want == nil {
				require.Contains(t, page, "No node matches these filters.")
			}
			// The form keeps the query.
			require.Contains(t, page, `name="q" value="`+tt.query.Get("q")+`"`)
		})
	}

	resp, page := get(nurse, "/ui/nodes?q="+tag)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-eval")
	require.Contains(t, page, `<script src="/ui/static/refresh.js" defer></script>`)
	require.Contains(t, page, `id="nodes" data-refresh="30"`)
	// Times in the hospital's zone (London), with its abbreviation.
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	require.Contains(t, page, nodes[1].contact.In(london).Format("2006-01-02 15:04 MST"))
	// Each node links to its monitor's run in the Temporal Web UI.
	require.Contains(t, page, `href="http://localhost:8233/namespaces/`)
	require.Contains(t, page, `/workflows/node:`+nodes[0].id+`"`)
	// Sort links keep the filters.
	require.Contains(t, page, `href="/ui/nodes?q=`+tag+`&amp;sort=contact"`)
	require.NotContains(t, page, "Rescan the fleet now", "nurses cannot rescan")

	resp, detail := get(nurse, "/ui/nodes/"+nodes[0].id)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, detail, `/workflows/node:`+nodes[0].id+`"`)
	require.Contains(t, detail, nodes[0].contact.In(london).Format("2006-01-02 15:04 MST"))

	resp, body := ndRaw(t, s, "GET", "/ui/static/refresh.js", "", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), "data-refresh")

	t.Run("bad query is a 400 naming the field, on the page", func(t *testing.T) {
		for query, field := range map[string]string{
			"sort=size":                     "sort",
			"status=FINE":                   "status",
			"q=" + strings.Repeat("x", 101): "q",
		} {
			resp, page := get(nurse, "/ui/nodes?"+query)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
			require.Contains(t, page, `role="alert"`, query)
			require.Contains(t, page, "Refused: "+field+" ", query)
			require.Contains(t, page, `<form class="filters"`, "the form stays to fix the query")
		}
	})

	t.Run("rescan", func(t *testing.T) {
		const scanButton = "Rescan the fleet now"
		admin := consoleSignIn(t, s, "a01")
		back := "/ui/nodes?q=" + tag + "&sort=status"
		_, page := get(admin, back)
		require.Contains(t, page, scanButton)
		require.Contains(t, page, `name="back" value="/ui/nodes?q=`+tag+`&amp;sort=status"`)
		post := func(session, csrf string) (*http.Response, string) {
			t.Helper()
			form := url.Values{"csrf": {csrf}, "back": {back}}.Encode()
			resp, body := ndRaw(t, s, "POST", "/ui/nodes/scan", "", consoleFormType, form, "Cookie", session, "Origin", s.URL)
			return resp, string(body)
		}
		// No token, a nurse's own token: refused.
		resp, _ := post(admin, "")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		_, nursePage := get(nurse, "/ui/nodes")
		resp, body := post(nurse, consoleCSRF(t, []byte(nursePage)))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Contains(t, body, "Only admins can rescan")

		ctx := context.Background()
		sc := env.Client.ScheduleClient()
		if _, err := sc.GetHandle(ctx, workflows.FleetScanScheduleID).Describe(ctx); err == nil {
			t.Skip("another test owns the fleet scan schedule")
		}
		csrf := consoleCSRF(t, []byte(page))
		resp, body = post(admin, csrf)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Contains(t, body, "Rescan refused: the fleet scan schedule")
		require.Contains(t, body, "no broker is configured")
		require.Equal(t, []string{"Bravo " + tag, "alpha " + tag, "Charlie " + tag}, order(body), "the list the form came from")
		require.Contains(t, body, "3 nodes · computed")

		h, err := sc.Create(ctx, client.ScheduleOptions{
			ID:     workflows.FleetScanScheduleID,
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
			Paused: true,
			Action: &client.ScheduleWorkflowAction{ID: "node-scan-page-test", Workflow: "NodeScanTestNoSuchWorkflow", TaskQueue: "node-scan-test-idle"},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Delete(context.Background()) })
		resp, _ = post(admin, csrf)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "/ui/nodes", loc.Path)
		require.Equal(t, url.Values{"q": {tag}, "sort": {"status"}, "scan": {"started"}}, loc.Query())
		_, page = get(admin, loc.String())
		require.Contains(t, page, `role="status">Fleet scan started`)
	})
}
