//go:build integration

package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/workflows"
)

// The package's database is shared with other tests. These tests seed the
// node tables directly (no workflows) with node ids of their own (random
// numbers from 9000000) and only assert about those.

// ndNodeTables are the tables keyed by node_id.
var ndNodeTables = []string{"broker_nodes", "node_settings", "node_contacts", "node_daily_stats", "node_import_errors",
	"node_resources", "node_resource_changes", "node_status_history", "node_mail_log"}

// ndNewID returns a fresh node id and removes its rows when the test ends.
func ndNewID(t *testing.T) string {
	t.Helper()
	id := fmt.Sprint(9000000 + rand.IntN(999999))
	t.Cleanup(func() {
		for _, table := range ndNodeTables {
			_, _ = env.DB.Exec(`DELETE FROM `+table+` WHERE node_id = $1`, id)
		}
	})
	return id
}

// ndExec runs a seeding statement.
func ndExec(t *testing.T, q string, args ...any) {
	t.Helper()
	_, err := env.DB.ExecContext(context.Background(), q, args...)
	require.NoError(t, err)
}

// ndNode inserts a broker_nodes row.
func ndNode(t *testing.T, id string, lastChecked time.Time, headline string, conditions ...string) {
	t.Helper()
	ndExec(t, `INSERT INTO broker_nodes (node_id, client_dn, last_scan_id, last_checked, last_contact, headline, conditions, status_since)
		VALUES ($1, 'CN=Node '||$1, 'scan-1', $2, $2, $3, $4, $2)`, id, lastChecked, headline, pqArray(conditions))
}

// pqArray writes a text[] literal.
func pqArray(xs []string) string {
	quoted := make([]string, len(xs))
	for i, x := range xs {
		quoted[i] = `"` + strings.ReplaceAll(x, `"`, `\"`) + `"`
	}
	return "{" + strings.Join(quoted, ",") + "}"
}

// ndStats inserts a daily stats row; daily nil leaves the deltas NULL.
func ndStats(t *testing.T, id string, day time.Time, daily *[4]int64, dailyRate *float64) {
	t.Helper()
	var di, du, dv, df any
	if daily != nil {
		di, du, dv, df = daily[0], daily[1], daily[2], daily[3]
	}
	ndExec(t, `INSERT INTO node_daily_stats (node_id, day, checked_at, last_contact, last_start, last_write, last_reject,
			imported, updated, invalid, failed, error_rate, daily_imported, daily_updated, daily_invalid, daily_failed, daily_error_rate)
		VALUES ($1, $2::date, $3, $3, '2025-06-01T08:00:00Z', $3, NULL, 1000, 100, 10, 5, 1.35, $4, $5, $6, $7, $8)`,
		id, day.Format(time.DateOnly), day.Add(10*time.Hour), di, du, dv, df, dailyRate)
}

func ndF(f float64) *float64 { return &f }

// ndRaw sends a request without following redirects and returns the
// response and its body.
func ndRaw(t *testing.T, s *stack, method, path, token, contentType, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, raw
}

// ndSummary returns the summary lines of ids, by id.
func ndSummary(t *testing.T, s *stack, token, query string, ids ...string) map[string]node.Summary {
	t.Helper()
	var list api.NodeSummaryList
	resp := s.call(t, "GET", "/v1/nodes"+query, token, "", &list)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]node.Summary{}
	for _, it := range list.Items {
		for _, id := range ids {
			if it.NodeID == id {
				out[id] = it
			}
		}
	}
	return out
}

// ndError checks an error answer's status and field.
func ndError(t *testing.T, s *stack, method, path, token, body string, status int, field string) api.ErrorDetail {
	t.Helper()
	var e api.ErrorBody
	resp := s.call(t, method, path, token, body, &e)
	require.Equal(t, status, resp.StatusCode, "%s %s: %+v", method, path, e)
	require.Equal(t, field, e.Error.Field, "%s %s: %+v", method, path, e)
	return e.Error
}

func TestNodeSummary_SevenDayMeanAndGapOverlay(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)

	fresh, stale, configured := ndNewID(t), ndNewID(t), ndNewID(t)
	ndNode(t, fresh, now.Add(-time.Hour), "ONLINE", "ONLINE")
	ndStats(t, fresh, today, &[4]int64{10, 5, 1, 1}, ndF(10))
	ndStats(t, fresh, today.AddDate(0, 0, -1), nil, nil) // no deltas: not a day with data
	ndStats(t, fresh, today.AddDate(0, 0, -2), &[4]int64{8, 0, 2, 0}, ndF(20))
	ndStats(t, fresh, today.AddDate(0, 0, -7), &[4]int64{1, 0, 9, 0}, ndF(90)) // outside the 7 days
	ndNode(t, stale, now.Add(-30*time.Hour), "OFFLINE", "OFFLINE", "DWH OUTDATED")
	label := "lbl-" + configured
	ndExec(t, `INSERT INTO node_settings (node_id, common_name, import_interface, labels) VALUES ($1, '[C] Clinic', 'CDA', $2)`,
		configured, pqArray([]string{label}))

	got := ndSummary(t, s, token, "", fresh, stale, configured)
	require.Len(t, got, 3)
	f := got[fresh]
	require.Equal(t, "Node "+fresh, f.CommonName)
	require.Equal(t, "ONLINE", f.Headline)
	require.Equal(t, []string{"ONLINE"}, []string(f.Conditions))
	require.Equal(t, int64(15), *f.ImportsToday)
	require.Equal(t, int64(2), *f.ErrorsToday)
	require.InDelta(t, 10.0, *f.ErrorRateToday, 1e-9)
	// (10 + 20) / 2 days with data; the seed would have said 30 / 7.
	require.InDelta(t, 15.0, *f.ErrorRate7d, 1e-9)
	require.Equal(t, 2, f.DaysWithData7d)
	require.False(t, f.HasSettings)

	st := got[stale]
	require.Equal(t, "GAP IN MONITORING", st.Headline, "not checked for 30 h")
	require.Equal(t, []string{"GAP IN MONITORING", "OFFLINE", "DWH OUTDATED"}, []string(st.Conditions))
	require.Nil(t, st.ImportsToday)
	require.Nil(t, st.ErrorRate7d)
	require.Zero(t, st.DaysWithData7d)

	c := got[configured]
	require.Equal(t, "[C] Clinic", c.CommonName)
	require.Equal(t, "CDA", c.ImportInterface)
	require.Equal(t, "GAP IN MONITORING", c.Headline, "never checked")
	require.Nil(t, c.LastChecked)
	require.True(t, c.HasSettings)

	got = ndSummary(t, s, token, "?status=OFFLINE", fresh, stale, configured)
	require.Len(t, got, 1)
	require.Contains(t, got, stale)
	got = ndSummary(t, s, token, "?status=gap_in_monitoring,ONLINE", fresh, stale, configured)
	require.Len(t, got, 3)
	got = ndSummary(t, s, token, "?label="+label, fresh, stale, configured)
	require.Len(t, got, 1)
	require.Contains(t, got, configured)

	ndError(t, s, "GET", "/v1/nodes?status=BROKEN", token, "", http.StatusBadRequest, "status")
	ndError(t, s, "GET", "/v1/nodes?label=", token, "", http.StatusBadRequest, "label")
}

func TestNodeDetail(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	id := ndNewID(t)
	ndNode(t, id, now.Add(-time.Hour), "LOW ERROR RATE", "LOW ERROR RATE")
	ndStats(t, id, today.AddDate(0, 0, -1), &[4]int64{1, 1, 0, 0}, ndF(0))
	ndStats(t, id, today, &[4]int64{90, 8, 1, 1}, ndF(2))
	base := now.Add(-48 * time.Hour)
	for i := range 25 {
		ndExec(t, `INSERT INTO node_import_errors (node_id, content_hash, content, error_at, repeats) VALUES ($1, $2, $3, $4, $5)`,
			id, []byte(fmt.Sprintf("h%02d", i)), fmt.Sprintf("error %02d", i), base.Add(time.Duration(i)*time.Minute), i+1)
	}
	ndExec(t, `INSERT INTO node_resources (node_id, resource, key, value) VALUES
		($1, 'versions', 'dwh-j2ee', 'dwh-j2ee-1.5.1'), ($1, 'versions', 'java', '11'), ($1, 'python', 'python3', '3.11')`, id)
	ndExec(t, `INSERT INTO node_resource_changes (node_id, resource, key, old_value, new_value, changed_at, scan_id) VALUES
		($1, 'versions', 'java', NULL, '8', $2, 's1'), ($1, 'versions', 'java', '8', '11', $3, 's2')`, id, base, base.Add(time.Hour))
	ndExec(t, `INSERT INTO node_status_history (node_id, changed_at, scan_id, headline, conditions, previous_headline, previous_conditions) VALUES
		($1, $2, 's1', 'ONLINE', '{ONLINE}', '', '{}'), ($1, $3, 's2', 'LOW ERROR RATE', '{"LOW ERROR RATE"}', 'ONLINE', '{ONLINE}')`,
		id, base, base.Add(time.Hour))
	ndExec(t, `INSERT INTO node_contacts (node_id, role, first_name, last_name, email, main_contact) VALUES ($1, 'ED', 'Eva', 'Ost', 'ed@clinic.example', true)`, id)
	ndExec(t, `INSERT INTO node_mail_log (key, node_id, condition, kind, status, recipients, cc, subject)
		VALUES ($1, $1, 'OFFLINE', 'alert', 'sent', '{ed@clinic.example}', '{ops@broker.example}', 'Automatische Information: AKTIN DWH Offline')`, id)

	var d node.Detail
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+id, token, "", &d).StatusCode)
	require.Equal(t, id, d.NodeID)
	require.Equal(t, "Node "+id, d.Name)
	require.False(t, d.HasSettings)
	require.Equal(t, 72, d.Settings.ThresholdHoursFailure, "defaults without settings")
	require.NotNil(t, d.Node)
	require.Equal(t, "LOW ERROR RATE", d.Headline)
	require.NotNil(t, d.LatestStats)
	require.Equal(t, today.Format(time.DateOnly), d.LatestStats.Day)
	require.Equal(t, int64(90), *d.LatestStats.DailyImported)
	require.Len(t, d.Errors, node.ErrorLimit)
	require.Equal(t, "error 24", d.Errors[0].Content, "newest first")
	require.Equal(t, int64(25), d.Errors[0].Repeats)
	require.Equal(t, "error 05", d.Errors[19].Content)
	require.Equal(t, map[string]map[string]string{
		"versions": {"dwh-j2ee": "dwh-j2ee-1.5.1", "java": "11"},
		"python":   {"python3": "3.11"},
	}, d.Resources)
	require.Len(t, d.ResourceChanges, 2)
	require.Equal(t, "11", *d.ResourceChanges[0].New)
	require.Nil(t, d.ResourceChanges[1].Old, "NEW")
	require.Len(t, d.StatusHistory, 2)
	require.Equal(t, "LOW ERROR RATE", d.StatusHistory[0].Headline, "newest first")
	require.Len(t, d.Contacts, 1)
	require.Equal(t, "ed@clinic.example", d.Contacts[0].Email)
	require.Len(t, d.Mails, 1)
	require.Equal(t, []string{"ops@broker.example"}, []string(d.Mails[0].CC))

	// A node with settings only is known; an unknown one is 404.
	configured := ndNewID(t)
	ndExec(t, `INSERT INTO node_settings (node_id, common_name) VALUES ($1, 'Only Settings')`, configured)
	d = node.Detail{}
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+configured, token, "", &d).StatusCode)
	require.Nil(t, d.Node)
	require.Equal(t, "Only Settings", d.Name)
	require.Equal(t, "GAP IN MONITORING", d.Headline)
	require.Empty(t, d.Errors)
	ndError(t, s, "GET", "/v1/nodes/"+ndNewID(t), token, "", http.StatusNotFound, "")
	ndError(t, s, "GET", "/v1/nodes/a.b", token, "", http.StatusBadRequest, "id")
}

func TestNodeHeatmap(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	id := ndNewID(t)
	ndNode(t, id, now, "ONLINE", "ONLINE")
	for i := range 10 {
		ndStats(t, id, today.AddDate(0, 0, -i), &[4]int64{10, 0, int64(i), 0}, ndF(float64(i)*1.5))
	}

	resp, body := ndRaw(t, s, "GET", "/v1/nodes/heatmap.png", token, "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	img, err := png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Positive(t, img.Bounds().Dx())

	resp, body = ndRaw(t, s, "GET", "/v1/nodes/heatmap.svg?days=7", token, "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), "<svg")

	ndError(t, s, "GET", "/v1/nodes/heatmap.png?days=0", token, "", http.StatusBadRequest, "days")
	ndError(t, s, "GET", "/v1/nodes/heatmap.svg?days=367", token, "", http.StatusBadRequest, "days")
	require.Equal(t, http.StatusUnauthorized, s.call(t, "GET", "/v1/nodes/heatmap.png", "", "", nil).StatusCode)
}

func TestNodeHeatmapMatrix(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	id := ndNewID(t)
	ndExec(t, `INSERT INTO node_settings (node_id, common_name) VALUES ($1, 'Matrix Clinic')`, id)
	ndStats(t, id, today, &[4]int64{10, 0, 1, 0}, ndF(9.09))
	ndStats(t, id, today.AddDate(0, 0, -2), nil, nil)
	ndStats(t, id, today.AddDate(0, 0, -3), &[4]int64{0, 0, 0, 0}, nil)
	ndStats(t, id, today.AddDate(0, 0, -41), &[4]int64{10, 0, 0, 0}, ndF(0))
	ndStats(t, id, today.AddDate(0, 0, -42), &[4]int64{0, 0, 1, 0}, ndF(100)) // before the window

	m, err := (&node.Store{DB: env.DB}).Heatmap(context.Background(), now, node.DefaultHeatmapDays)
	require.NoError(t, err)
	require.Len(t, m.Days, 42)
	require.Equal(t, today, m.Days[41])
	require.Equal(t, today.AddDate(0, 0, -41), m.Days[0])
	var (
		row    []*float64
		noData []bool
	)
	for _, r := range m.Rows {
		if r.Label == "Matrix Clinic" {
			row, noData = r.Rates, r.NoData
		}
	}
	require.Len(t, row, 42)
	require.Len(t, noData, 42)
	require.InDelta(t, 9.09, *row[41], 1e-9)
	require.False(t, noData[41])
	require.Nil(t, row[39], "a row without deltas")
	require.True(t, noData[39], "a row without deltas: no data")
	require.Nil(t, row[38], "deltas without imports")
	require.False(t, noData[38], "deltas without imports: no imports")
	require.Nil(t, row[20], "no row")
	require.True(t, noData[20], "no row: no data")
	require.InDelta(t, 0.0, *row[0], 1e-9)
	require.False(t, noData[0])
}

func TestNodeExport(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	id := ndNewID(t)
	ndNode(t, id, time.Now().UTC(), "ONLINE", "ONLINE")
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	ndStats(t, id, d(2025, 12, 31), &[4]int64{1, 2, 3, 4}, ndF(70))
	ndStats(t, id, d(2026, 1, 1), nil, nil)
	ndStats(t, id, d(2026, 1, 2), &[4]int64{100, 0, 0, 1}, ndF(0.99))
	ndExec(t, `INSERT INTO node_import_errors (node_id, content_hash, content, error_at, repeats) VALUES
		($1, 'a', 'old; error', '2025-12-31T23:59:59Z', 1), ($1, 'b', 'first', '2026-01-01T00:00:00Z', 2),
		($1, 'c', 'second', '2026-03-01T12:00:00Z', 3)`, id)
	ndExec(t, `INSERT INTO node_resource_changes (node_id, resource, key, old_value, new_value, changed_at, scan_id) VALUES
		($1, 'versions', 'java', NULL, '8', '2025-06-01T00:00:00Z', 's0'),
		($1, 'versions', 'java', '8', '11', '2026-02-01T00:00:00Z', 's1'),
		($1, 'python', 'numpy', '1.2', NULL, '2026-02-02T00:00:00Z', 's2'),
		($1, 'python', 'pandas', NULL, '2.0', '2026-02-03T00:00:00Z', 's3')`, id)

	export := func(year int, kind string) [][]string {
		t.Helper()
		resp, body := ndRaw(t, s, "GET", fmt.Sprintf("/v1/nodes/%s/export?year=%d&kind=%s", id, year, kind), token, "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Equal(t, fmt.Sprintf(`attachment; filename="%s_%s_%d.csv"`, id, kind, year), resp.Header.Get("Content-Disposition"))
		r := csv.NewReader(bytes.NewReader(body))
		r.Comma = ';'
		rows, err := r.ReadAll()
		require.NoError(t, err, string(body))
		return rows
	}

	rows := export(2026, "stats")
	require.Equal(t, []string{"date", "last_contact", "last_start", "last_write", "last_reject", "imported", "updated", "invalid",
		"failed", "error_rate", "daily_imported", "daily_updated", "daily_invalid", "daily_failed", "daily_error_rate"}, rows[0])
	require.Len(t, rows, 3)
	require.Equal(t, []string{"2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", "2025-06-01T08:00:00Z", "2026-01-01T10:00:00Z", "-",
		"1000", "100", "10", "5", "1.35", "-", "-", "-", "-", "-"}, rows[1])
	require.Equal(t, []string{"100", "0", "0", "1", "0.99"}, rows[2][10:])
	rows = export(2025, "stats")
	require.Len(t, rows, 2)
	require.Equal(t, "2025-12-31T10:00:00Z", rows[1][0])
	require.Len(t, export(2024, "stats"), 1, "header only")

	rows = export(2026, "errors")
	require.Equal(t, [][]string{{"timestamp", "repeats", "content"},
		{"2026-03-01T12:00:00Z", "3", "second"}, {"2026-01-01T00:00:00Z", "2", "first"}}, rows)
	rows = export(2025, "errors")
	require.Equal(t, []string{"2025-12-31T23:59:59Z", "1", "old; error"}, rows[1], "quoted ';' survives")

	rows = export(2026, "resources")
	require.Equal(t, [][]string{{"changed_at", "resource", "key", "old", "new"},
		{"2026-02-01T00:00:00Z", "versions", "java", "8", "11"},
		{"2026-02-02T00:00:00Z", "python", "numpy", "1.2", "DELETED"},
		{"2026-02-03T00:00:00Z", "python", "pandas", "NEW", "2.0"}}, rows)

	base := "/v1/nodes/" + id + "/export"
	ndError(t, s, "GET", base+"?kind=stats", token, "", http.StatusBadRequest, "year")
	ndError(t, s, "GET", base+"?year=26&kind=stats", token, "", http.StatusBadRequest, "year")
	ndError(t, s, "GET", base+"?year=2026x&kind=stats", token, "", http.StatusBadRequest, "year")
	ndError(t, s, "GET", base+"?year=2026", token, "", http.StatusBadRequest, "kind")
	ndError(t, s, "GET", base+"?year=2026&kind=backup", token, "", http.StatusBadRequest, "kind")
	ndError(t, s, "GET", "/v1/nodes/"+ndNewID(t)+"/export?year=2026&kind=stats", token, "", http.StatusNotFound, "")
}

func TestNodeSettingsCRUD(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	id := ndNewID(t)
	path := "/v1/nodes/" + id + "/settings"

	ndError(t, s, "GET", path, admin, "", http.StatusNotFound, "")
	ndError(t, s, "PATCH", path, admin, `{"long_name":"x"}`, http.StatusNotFound, "")

	var st map[string]any
	resp := s.call(t, "PUT", path, admin, `{"common_name":"[`+id+`] Klinikum","labels":["a","a","b"],"root_ids":{"PATIENT":"1.2.3"}}`, &st)
	require.Equal(t, http.StatusCreated, resp.StatusCode, st)
	require.Equal(t, path, resp.Header.Get("Location"))
	require.Equal(t, float64(72), st["threshold_hours_failure"])
	require.Equal(t, float64(1), st["notification_interval_weeks"])
	require.Equal(t, float64(3), st["consecutive_import_days"])
	require.Equal(t, "de", st["mail_language"])
	require.Equal(t, []any{"a", "b"}, st["labels"])
	require.Equal(t, map[string]any{"PATIENT": "1.2.3", "ENCOUNTER": "", "BILLING": ""}, st["root_ids"])

	resp = s.call(t, "PATCH", path, admin, `{"threshold_hours_failure":24,"mail_language":"en"}`, &st)
	require.Equal(t, http.StatusOK, resp.StatusCode, st)
	require.Equal(t, float64(24), st["threshold_hours_failure"])
	require.Equal(t, "["+id+"] Klinikum", st["common_name"], "PATCH keeps the other fields")
	require.Equal(t, []any{"a", "b"}, st["labels"])

	require.Equal(t, http.StatusOK, s.call(t, "GET", path, s.login(t, "n01"), "", &st).StatusCode, "staff can read")
	require.Equal(t, "en", st["mail_language"])

	resp = s.call(t, "PUT", path, admin, `{"common_name":"Renamed"}`, &st)
	require.Equal(t, http.StatusOK, resp.StatusCode, "replaced")
	require.Equal(t, float64(72), st["threshold_hours_failure"], "PUT resets absent fields to the defaults")
	require.Equal(t, []any{}, st["labels"])

	for _, tc := range []struct{ body, field string }{
		{`{"long_name":"x"}`, "common_name"},
		{`{"common_name":""}`, "common_name"},
		{`{"common_name":"x","threshold_hours_failure":0}`, "threshold_hours_failure"},
		{`{"common_name":"x","threshold_hours_failure":8761}`, "threshold_hours_failure"},
		{`{"common_name":"x","notification_interval_weeks":53}`, "notification_interval_weeks"},
		{`{"common_name":"x","consecutive_import_days":0}`, "consecutive_import_days"},
		{`{"common_name":"x","mail_language":"fr"}`, "mail_language"},
		{`{"common_name":"x","labels":["with space"]}`, "labels"},
		{`{"common_name":"x","root_ids":{"PATIENTS":"1"}}`, "PATIENTS"},
		{`{"common_name":"x","format_ids":"1"}`, "format_ids"},
		{`{"common_name":"x","threshold_hours_failure":"72"}`, "threshold_hours_failure"},
		{`{"common_name":"x","color":"red"}`, "color"},
	} {
		ndError(t, s, "PUT", path, admin, tc.body, http.StatusBadRequest, tc.field)
	}
	ndError(t, s, "PATCH", path, admin, `{"consecutive_import_days":366}`, http.StatusBadRequest, "consecutive_import_days")
	ndError(t, s, "PUT", "/v1/nodes/a.b/settings", admin, `{"common_name":"x"}`, http.StatusBadRequest, "id")
	require.Equal(t, http.StatusOK, s.call(t, "GET", path, admin, "", &st).StatusCode)
	require.Equal(t, "Renamed", st["common_name"], "failed writes changed nothing")

	require.Equal(t, http.StatusNoContent, s.call(t, "DELETE", path, admin, "", nil).StatusCode)
	ndError(t, s, "GET", path, admin, "", http.StatusNotFound, "")
	ndError(t, s, "DELETE", path, admin, "", http.StatusNotFound, "")
}

func TestNodeSettingsImport(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	a, b := ndNewID(t), ndNewID(t)
	mapping := `{
		"` + a + `": {"COMMON_NAME": "[A] Klinikum", "LONG_NAME": "changeme", "JIRA_LABELS": ["klinikum-a"],
			"HOSPITAL_INFORMATION_SYSTEM": "ORBIS", "IMPORT_INTERFACE": "changeme",
			"ROOT": {"PATIENT": "1.2.276.0.1", "ENCOUNTER": "changeme", "BILLING": ""},
			"FORMAT": {"PATIENT": "%PAT%"}, "THRESHOLD_HOURS_FAILURE": 0, "WEEKS_NOTIFICATION_INTERVAL": null,
			"CONSECUTIVE_IMPORT_DAYS": ""},
		"` + b + `": {"COMMON_NAME": "[B] Stadtklinik", "THRESHOLD_HOURS_FAILURE": 24, "WEEKS_NOTIFICATION_INTERVAL": 2,
			"CONSECUTIVE_IMPORT_DAYS": 5}
	}`
	var res api.NodeImportResult
	resp := s.call(t, "POST", "/v1/nodes/settings/import", admin, mapping, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, res)
	require.Equal(t, api.NodeImportResult{Created: 2, Updated: 0}, res)

	var st map[string]any
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+a+"/settings", admin, "", &st).StatusCode)
	require.Equal(t, "[A] Klinikum", st["common_name"])
	require.Equal(t, "", st["long_name"], "changeme → empty")
	require.Equal(t, "", st["import_interface"])
	require.Equal(t, "ORBIS", st["hospital_information_system"])
	require.Equal(t, map[string]any{"PATIENT": "1.2.276.0.1", "ENCOUNTER": "", "BILLING": ""}, st["root_ids"])
	require.Equal(t, map[string]any{"PATIENT": "%PAT%", "ENCOUNTER": "", "BILLING": ""}, st["format_ids"])
	require.Equal(t, float64(72), st["threshold_hours_failure"], "0 → default")
	require.Equal(t, float64(1), st["notification_interval_weeks"], "null → default")
	require.Equal(t, float64(3), st["consecutive_import_days"], `"" → default`)
	require.Equal(t, []any{"klinikum-a"}, st["labels"])
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+b+"/settings", admin, "", &st).StatusCode)
	require.Equal(t, float64(24), st["threshold_hours_failure"])
	require.Equal(t, float64(2), st["notification_interval_weeks"])
	require.Equal(t, float64(5), st["consecutive_import_days"])

	// A re-import updates, and keeps a mail language set over the API.
	require.Equal(t, http.StatusOK, s.call(t, "PATCH", "/v1/nodes/"+b+"/settings", admin, `{"mail_language":"en"}`, nil).StatusCode)
	resp = s.call(t, "POST", "/v1/nodes/settings/import", admin, mapping, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, api.NodeImportResult{Created: 0, Updated: 2}, res)
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+b+"/settings", admin, "", &st).StatusCode)
	require.Equal(t, "en", st["mail_language"])

	// All or nothing: a bad entry stores nothing, not even the good one.
	c, bad := ndNewID(t), ndNewID(t)
	body := `{"` + c + `": {"COMMON_NAME": "[C] Fine"}, "` + bad + `": {"COMMON_NAME": "", "LONG_NAME": "x"},
		"` + a + `": {"COMMON_NAME": "[A] Changed"}}`
	e := ndError(t, s, "POST", "/v1/nodes/settings/import", admin, body, http.StatusBadRequest, bad+".COMMON_NAME")
	require.Equal(t, api.CodeInvalidField, e.Code)
	ndError(t, s, "GET", "/v1/nodes/"+c+"/settings", admin, "", http.StatusNotFound, "")
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/nodes/"+a+"/settings", admin, "", &st).StatusCode)
	require.Equal(t, "[A] Klinikum", st["common_name"])

	ndError(t, s, "POST", "/v1/nodes/settings/import", admin, `{"`+c+`": {"COMMON_NAME": "x", "THRESHOLD_HOURS_FAILURE": 9999}}`,
		http.StatusBadRequest, c+".THRESHOLD_HOURS_FAILURE")
	ndError(t, s, "POST", "/v1/nodes/settings/import", admin, `{"`+c+`": {"COMMON_NAME": "x", "ROOT": {"PATIENT": 1}}}`,
		http.StatusBadRequest, c+".ROOT.PATIENT")
	e = ndError(t, s, "POST", "/v1/nodes/settings/import", admin, `[1, 2]`, http.StatusBadRequest, "")
	require.Equal(t, api.CodeInvalidJSON, e.Code)
}

func TestNodeContacts(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	id := ndNewID(t)
	base := "/v1/nodes/" + id + "/contacts"
	ndError(t, s, "POST", base, admin, `{"role":"IT","email":"it@clinic.example"}`, http.StatusNotFound, "")
	ndNode(t, id, time.Now().UTC(), "ONLINE", "ONLINE")

	var ct map[string]any
	resp := s.call(t, "POST", base, admin, `{"role":"ED","title":"Dr.","first_name":"Eva","last_name":"Ost","email":"Eva.Ost@clinic.example","main_contact":true}`, &ct)
	require.Equal(t, http.StatusCreated, resp.StatusCode, ct)
	cid := fmt.Sprint(ct["id"])
	require.Equal(t, base+"/"+cid, resp.Header.Get("Location"))
	require.Equal(t, true, ct["main_contact"])
	require.Equal(t, false, ct["unsubscribed"])

	ndError(t, s, "POST", base, admin, `{"role":"ED","email":"eva.ost@CLINIC.example"}`, http.StatusConflict, "email")
	resp = s.call(t, "POST", base, admin, `{"role":"IT","email":"eva.ost@clinic.example"}`, &ct)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "same address, other role")
	itID := fmt.Sprint(ct["id"])

	for _, tc := range []struct{ body, field string }{
		{`{"email":"a@clinic.example"}`, "role"},
		{`{"role":"IT"}`, "email"},
		{`{"role":"Notaufnahme","email":"a@clinic.example"}`, "role"},
		{`{"role":"IT","email":"not an address"}`, "email"},
		{`{"role":"IT","email":"Name <a@clinic.example>"}`, "email"},
		{`{"role":"IT","email":"a@clinic.example","main_contact":"yes"}`, "main_contact"},
		{`{"role":"IT","email":"a@clinic.example","phone":"1"}`, "phone"},
	} {
		ndError(t, s, "POST", base, admin, tc.body, http.StatusBadRequest, tc.field)
	}

	var list api.NodeContactList
	require.Equal(t, http.StatusOK, s.call(t, "GET", base, s.login(t, "n01"), "", &list).StatusCode)
	require.Len(t, list.Items, 2)
	require.Equal(t, "ED", list.Items[0].Role)

	resp = s.call(t, "PATCH", base+"/"+cid, admin, `{"unsubscribed":true}`, &ct)
	require.Equal(t, http.StatusOK, resp.StatusCode, ct)
	require.Equal(t, true, ct["unsubscribed"])
	require.Equal(t, "Eva", ct["first_name"], "PATCH keeps the other fields")
	ndError(t, s, "PATCH", base+"/"+itID, admin, `{"role":"ED"}`, http.StatusConflict, "email")

	resp = s.call(t, "PUT", base+"/"+cid, admin, `{"role":"ED","email":"new@clinic.example"}`, &ct)
	require.Equal(t, http.StatusOK, resp.StatusCode, ct)
	require.Equal(t, "", ct["first_name"], "PUT replaces")
	require.Equal(t, false, ct["main_contact"])
	ndError(t, s, "PUT", base+"/"+cid, admin, `{"role":"ED"}`, http.StatusBadRequest, "email")

	ndError(t, s, "PATCH", base+"/999999999", admin, `{"title":"x"}`, http.StatusNotFound, "")
	ndError(t, s, "PATCH", base+"/x", admin, `{"title":"x"}`, http.StatusBadRequest, "contact_id")
	require.Equal(t, http.StatusNoContent, s.call(t, "DELETE", base+"/"+cid, admin, "", nil).StatusCode)
	ndError(t, s, "DELETE", base+"/"+cid, admin, "", http.StatusNotFound, "")
	ndError(t, s, "DELETE", "/v1/nodes/"+ndNewID(t)+"/contacts/"+itID, admin, "", http.StatusNotFound, "")
}

func TestNodeAuth(t *testing.T) {
	s := startStack(t)
	staff, charge, admin := s.login(t, "n01"), s.login(t, "c01"), s.login(t, "a01")
	id := ndNewID(t)
	ndNode(t, id, time.Now().UTC(), "ONLINE", "ONLINE")

	reads := []string{"/v1/nodes", "/v1/nodes/" + id, "/v1/nodes/" + id + "/contacts", "/v1/nodes/" + id + "/export?year=2026&kind=stats"}
	for _, p := range reads {
		require.Equal(t, http.StatusUnauthorized, s.call(t, "GET", p, "", "", nil).StatusCode, p)
		require.Equal(t, http.StatusOK, s.call(t, "GET", p, staff, "", nil).StatusCode, p)
	}
	writes := []struct{ method, path, body string }{
		{"PUT", "/v1/nodes/" + id + "/settings", `{"common_name":"x"}`},
		{"PATCH", "/v1/nodes/" + id + "/settings", `{"common_name":"x"}`},
		{"DELETE", "/v1/nodes/" + id + "/settings", ""},
		{"POST", "/v1/nodes/settings/import", `{}`},
		{"POST", "/v1/nodes/" + id + "/contacts", `{"role":"IT","email":"it@clinic.example"}`},
		{"PATCH", "/v1/nodes/" + id + "/contacts/1", `{}`},
		{"DELETE", "/v1/nodes/" + id + "/contacts/1", ""},
		{"POST", "/v1/nodes/scan", ""},
	}
	for _, w := range writes {
		require.Equal(t, http.StatusUnauthorized, s.call(t, w.method, w.path, "", w.body, nil).StatusCode, w.path)
		for _, tok := range []string{staff, charge} {
			var e api.ErrorBody
			require.Equal(t, http.StatusForbidden, s.call(t, w.method, w.path, tok, w.body, &e).StatusCode, w.path)
			require.Equal(t, api.CodeForbidden, e.Error.Code)
		}
	}
	require.Equal(t, http.StatusCreated, s.call(t, "PUT", "/v1/nodes/"+id+"/settings", admin, `{"common_name":"x"}`, nil).StatusCode)
}

func TestNodeScanTrigger(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	ctx := context.Background()
	sc := env.Client.ScheduleClient()
	if _, err := sc.GetHandle(ctx, workflows.FleetScanScheduleID).Describe(ctx); err == nil {
		t.Skip("another test owns the fleet scan schedule")
	}
	e := ndError(t, s, "POST", "/v1/nodes/scan", admin, "", http.StatusNotFound, "")
	require.Contains(t, e.Message, "no broker is configured")

	// A paused schedule whose workflow no worker polls: triggering it only
	// records the action.
	h, err := sc.Create(ctx, client.ScheduleOptions{
		ID:     workflows.FleetScanScheduleID,
		Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
		Paused: true,
		Action: &client.ScheduleWorkflowAction{ID: "node-scan-test", Workflow: "NodeScanTestNoSuchWorkflow", TaskQueue: "node-scan-test-idle"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	var out map[string]any
	resp := s.call(t, "POST", "/v1/nodes/scan", admin, "", &out)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	require.Equal(t, workflows.FleetScanScheduleID, out["schedule_id"])
}

func TestNodePages(t *testing.T) {
	s := startStack(t)
	now := time.Now().UTC()
	id := ndNewID(t)
	ndNode(t, id, now, "OFFLINE", "OFFLINE", "TESTING")
	evil := `<script>alert("x")</script> & Klinik`
	ndExec(t, `INSERT INTO node_settings (node_id, common_name, long_name) VALUES ($1, $2, $2)`, id, evil)
	ndExec(t, `INSERT INTO node_import_errors (node_id, content_hash, content, error_at) VALUES ($1, 'x', '<img src=x onerror=alert(1)>', $2)`, id, now)

	// Not signed in: to the sign-in form, remembering the page.
	resp, _ := ndRaw(t, s, "GET", "/ui/nodes", "", "", "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/login?next="+url.QueryEscape("/ui/nodes"), resp.Header.Get("Location"))
	resp, body := ndRaw(t, s, "GET", "/ui/login?next=/ui/nodes/"+id, "", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `name="next" value="/ui/nodes/`+id+`"`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	// Browsers send "Origin: null" with a form under "no-referrer", and the
	// sign-in would be refused as cross-site (TestDev_WebUIDecodesIncidentForSignedInAdmin
	// signs in with Chromium).
	require.Equal(t, "same-origin", resp.Header.Get("Referrer-Policy"))

	form := func(login, password, next string) string {
		return url.Values{"login": {login}, "password": {password}, "next": {next}}.Encode()
	}
	const formType = "application/x-www-form-urlencoded"
	resp, body = ndRaw(t, s, "POST", "/ui/login", "", formType, form("n01", "wrong-password", ""))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, string(body), "Unknown login or wrong password")
	require.Empty(t, resp.Cookies())
	resp, _ = ndRaw(t, s, "POST", "/ui/login", "", formType, form("n01", demoPassword, ""), "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "cross-site sign-in")

	resp, _ = ndRaw(t, s, "POST", "/ui/login", "", formType, form("n01", demoPassword, "//evil.example/ui/"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"), "no open redirect: My work")
	resp, _ = ndRaw(t, s, "POST", "/ui/login", "", formType, form("n01", demoPassword, "/ui/nodes/"+id), "Origin", s.URL)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/nodes/"+id, resp.Header.Get("Location"))
	cookies := map[string]*http.Cookie{}
	for _, c := range resp.Cookies() {
		if c.Path == "/codec" {
			// The session cookie also goes to the Temporal Web UI's codec
			// server (codec_integration_test.go); nothing else leaves /ui.
			require.Equal(t, "vigil_refresh", c.Name)
			continue
		}
		cookies[c.Name] = c
	}
	for _, name := range []string{"vigil_token", "vigil_refresh"} {
		c := cookies[name]
		require.NotNil(t, c, name)
		require.True(t, c.HttpOnly, name)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite, name)
		require.Equal(t, "/ui", c.Path, name)
		require.False(t, c.Secure, "plain HTTP test server")
	}
	session := "vigil_token=" + cookies["vigil_token"].Value

	resp, body = ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", session)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	page := string(body)
	require.NotContains(t, page, "<script>alert")
	require.Contains(t, page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Klinik")
	require.Contains(t, page, `<a href="/ui/nodes/`+id+`">`)
	require.Contains(t, page, `<span class="badge blue">TESTING</span>`)
	require.Contains(t, page, `<span class="badge red">OFFLINE</span>`)
	require.Contains(t, page, `src="/ui/nodes/heatmap.svg"`)

	resp, body = ndRaw(t, s, "GET", "/ui/nodes/"+id, "", "", "", "Cookie", session)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	page = string(body)
	require.NotContains(t, page, "<script>alert")
	require.NotContains(t, page, "<img src=x")
	require.Contains(t, page, "&lt;img src=x onerror=alert(1)&gt;")
	require.Contains(t, page, `href="/ui/nodes"`)
	require.Contains(t, page, `/ui/nodes/`+id+`/export?year=`)

	resp, _ = ndRaw(t, s, "GET", "/ui/nodes/heatmap.svg", "", "", "", "Cookie", session)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
	resp, _ = ndRaw(t, s, "GET", fmt.Sprintf("/ui/nodes/%s/export?year=%d&kind=errors", id, now.Year()), "", "", "", "Cookie", session)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = ndRaw(t, s, "GET", "/ui/nodes/"+ndNewID(t), "", "", "", "Cookie", session)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, string(body), "There is no node")

	// The refresh cookie alone renews the access cookie.
	resp, _ = ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", "vigil_refresh="+cookies["vigil_refresh"].Value)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, resp.Cookies())
	require.Equal(t, "vigil_token", resp.Cookies()[0].Name)
	// Garbage cookies send the browser to sign in.
	resp, _ = ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", "vigil_token=x; vigil_refresh=y")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	// The cookie is not a credential for the API; a bearer token works on
	// the pages.
	resp, _ = ndRaw(t, s, "GET", "/v1/nodes", "", "", "", "Cookie", session)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = ndRaw(t, s, "GET", "/ui/nodes/"+id, s.login(t, "n01"), "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, page2 := ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", session)
	resp, _ = ndRaw(t, s, "POST", "/ui/logout", "", formType, url.Values{"csrf": {consoleCSRF(t, page2)}}.Encode(), "Cookie", session)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, c := range resp.Cookies() {
		require.Empty(t, c.Value, c.Name)
		require.Negative(t, c.MaxAge, c.Name)
	}
}
