//go:build integration

package api_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

// The package's database is shared with other tests, which open incidents
// now. These tests insert their own incidents in a random window decades
// ago and always filter by it, so other rows never reach their assertions.

// incReadWindow returns the start of a random, hour-aligned day-long window
// in the five years from startYear; each test takes its own five years.
func incReadWindow(startYear int) time.Time {
	id := uuid.New()
	hours := binary.BigEndian.Uint32(id[:4]) % (5 * 365 * 24)
	return time.Date(startYear, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(hours) * time.Hour)
}

// incReadRow is an incident to insert; offsets are from Opened, and a
// negative offset leaves the timestamp NULL.
type incReadRow struct {
	Opened                          time.Time
	Status, Severity, AlertType     string
	AssignedTo                      string
	Assign, Page, Ack, Resolve      time.Duration
	ResolvedBy, ResolutionNotes     string
	WorkflowID, PatientID, RoomName string
}

const incReadNever = -time.Second

func incReadInsert(t *testing.T, rows ...incReadRow) []string {
	t.Helper()
	at := func(opened time.Time, d time.Duration) *time.Time {
		if d < 0 {
			return nil
		}
		v := opened.Add(d)
		return &v
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		id := uuid.NewString()
		var assigned *string
		if r.AssignedTo != "" {
			assigned = &r.AssignedTo
		}
		if r.WorkflowID == "" {
			r.WorkflowID = "incident:" + uuid.NewString()
		}
		_, err := env.DB.ExecContext(context.Background(), `
			INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, source,
				status, assigned_to, assigned_role, opened_at, assigned_at, first_paged_at, acknowledged_at,
				resolved_at, resolved_by, resolution_notes, last_alert_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'bedside-monitor', $8, $9, 'NURSE', $10, $11, $12, $13, $14, $15, $16, $10)`,
			id, r.WorkflowID, uuid.NewString(), r.AlertType, r.Severity, r.PatientID, r.RoomName, r.Status, assigned,
			r.Opened, at(r.Opened, r.Assign), at(r.Opened, r.Page), at(r.Opened, r.Ack), at(r.Opened, r.Resolve),
			r.ResolvedBy, r.ResolutionNotes)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func incReadQuery(base time.Time, extra url.Values) string {
	q := url.Values{"from": {base.Format(time.RFC3339)}, "to": {base.Add(24 * time.Hour).Format(time.RFC3339)}}
	for k, v := range extra {
		q[k] = v
	}
	return q.Encode()
}

func TestIncidentsRead_RefusesWithoutAToken(t *testing.T) {
	s := startStack(t)
	for _, path := range []string{"/v1/incidents", "/v1/incidents/metrics", "/v1/incidents/" + uuid.NewString()} {
		t.Run(path, func(t *testing.T) {
			var body api.ErrorBody
			resp := s.call(t, "GET", path, "", "", &body)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, api.CodeUnauthorized, body.Error.Code)
			require.Equal(t, `Bearer realm="vigil"`, resp.Header.Get("WWW-Authenticate"))
		})
	}
}

func TestIncidentsRead_BadInputNamesTheField(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	tests := []struct {
		name   string
		path   string
		status int
		code   string
		field  string
	}{
		{"bad status", "/v1/incidents?status=OPEN,DONE", 400, api.CodeInvalidField, "status"},
		{"bad severity", "/v1/incidents?severity=SEVERE", 400, api.CodeInvalidField, "severity"},
		{"bad time", "/v1/incidents?from=15/07/2026", 400, api.CodeInvalidField, "from"},
		{"from after to", "/v1/incidents?from=2026-07-15T10:00:00Z&to=2026-07-14T10:00:00Z", 400, api.CodeInvalidField, "from"},
		{"limit out of range", "/v1/incidents?limit=1000", 400, api.CodeInvalidField, "limit"},
		{"bad cursor", "/v1/incidents?cursor=abc", 400, api.CodeInvalidField, "cursor"},
		{"id not a uuid", "/v1/incidents/N01", 400, api.CodeInvalidField, "id"},
		{"unknown incident", "/v1/incidents/" + uuid.NewString(), 404, api.CodeNotFound, ""},
		{"metrics bad to", "/v1/incidents/metrics?to=now", 400, api.CodeInvalidField, "to"},
		{"metrics from after to", "/v1/incidents/metrics?from=2026-07-15T10:00:00Z&to=2026-07-14T10:00:00Z", 400, api.CodeInvalidField, "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body api.ErrorBody
			resp := s.call(t, "GET", tt.path, token, "", &body)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, tt.code, body.Error.Code)
			require.Equal(t, tt.field, body.Error.Field)
		})
	}
}

func TestIncidentsRead_ListFiltersAndPages(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	base := incReadWindow(1990)
	ids := incReadInsert(t,
		incReadRow{Opened: base.Add(1 * time.Minute), Status: "OPEN", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST",
			Assign: incReadNever, Page: incReadNever, Ack: incReadNever, Resolve: incReadNever, PatientID: "P-1001", RoomName: "ICU-3"},
		incReadRow{Opened: base.Add(2 * time.Minute), Status: "ASSIGNED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N01",
			Assign: time.Second, Page: 2 * time.Second, Ack: incReadNever, Resolve: incReadNever, PatientID: "P-1002", RoomName: "4B"},
		incReadRow{Opened: base.Add(3 * time.Minute), Status: "ACKNOWLEDGED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N02",
			Assign: time.Second, Page: 2 * time.Second, Ack: 30 * time.Second, Resolve: incReadNever, PatientID: "P-1003", RoomName: "4C"},
		incReadRow{Opened: base.Add(4 * time.Minute), Status: "RESOLVED", Severity: "MEDIUM", AlertType: "FEVER_HIGH", AssignedTo: "N01",
			Assign: time.Second, Page: 2 * time.Second, Ack: time.Minute, Resolve: time.Hour, ResolvedBy: "N01", PatientID: "P-1004", RoomName: "5A"},
		incReadRow{Opened: base.Add(5 * time.Minute), Status: "IN_PROGRESS", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST", AssignedTo: "D01",
			Assign: time.Second, Page: 2 * time.Second, Ack: 10 * time.Second, Resolve: incReadNever, PatientID: "P-1005", RoomName: "ICU-1"},
	)

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"window, newest first", nil, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"statuses", url.Values{"status": {"OPEN,IN_PROGRESS"}}, []string{ids[4], ids[0]}},
		{"repeated status parameters", url.Values{"status": {"OPEN", "RESOLVED"}}, []string{ids[3], ids[0]}},
		{"severity", url.Values{"severity": {"HIGH"}}, []string{ids[2], ids[1]}},
		{"assignee me", url.Values{"assignee": {"me"}}, []string{ids[3], ids[1]}},
		{"assignee id", url.Values{"assignee": {"D01"}}, []string{ids[4]}},
		{"alert type", url.Values{"alert_type": {"CARDIAC_ARREST"}}, []string{ids[4], ids[0]}},
		{"combined", url.Values{"assignee": {"me"}, "status": {"ASSIGNED,ACKNOWLEDGED"}, "severity": {"HIGH,CRITICAL"}}, []string{ids[1]}},
		{"nothing matches", url.Values{"alert_type": {"FETAL_DISTRESS"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var page api.IncidentListPage
			resp := s.call(t, "GET", "/v1/incidents?"+incReadQuery(base, tt.query), token, "", &page)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := []string{}
			for _, in := range page.Items {
				got = append(got, in.ID)
			}
			require.Equal(t, tt.want, got)
			require.Nil(t, page.NextCursor)
		})
	}

	t.Run("pages of two without duplicates or gaps", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 10 {
			extra := url.Values{"limit": {"2"}}
			if cursor != "" {
				extra.Set("cursor", cursor)
			}
			var page api.IncidentListPage
			require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents?"+incReadQuery(base, extra), token, "", &page).StatusCode)
			for _, in := range page.Items {
				got = append(got, in.ID)
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, got)
	})

	t.Run("item shape", func(t *testing.T) {
		var raw struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		q := incReadQuery(base, url.Values{"status": {"ASSIGNED"}})
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents?"+q, token, "", &raw).StatusCode)
		require.Len(t, raw.Items, 1)
		item := raw.Items[0]
		for _, key := range []string{"id", "status", "severity", "alert_type", "patient_id", "room", "source", "assigned_to",
			"assignee_name", "assigned_role", "alert_count", "escalation_step", "opened_at", "assigned_at", "first_paged_at",
			"acknowledged_at", "in_progress_at", "resolved_at", "workflow_id", "web_ui_url"} {
			require.Contains(t, item, key)
		}
		require.Equal(t, "P-1002", item["patient_id"])
		require.Equal(t, "4B", item["room"])
		require.Equal(t, "N01", item["assigned_to"])
		require.Equal(t, "Amelia Hart", item["assignee_name"])
		require.Nil(t, item["acknowledged_at"])
		require.Equal(t, base.Add(2*time.Minute).Format(time.RFC3339), item["opened_at"])
		require.Equal(t, "http://localhost:8233/namespaces/"+url.PathEscape(env.Temporal.Namespace())+"/workflows/"+
			url.PathEscape(item["workflow_id"].(string)), item["web_ui_url"])
	})
}

func TestIncidentsRead_DetailHasTheTimelineInOrder(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "d01")
	opened := incReadWindow(1995)
	id := incReadInsert(t, incReadRow{Opened: opened, Status: "RESOLVED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N01",
		Assign: time.Second, Page: 2 * time.Second, Ack: 40 * time.Second, Resolve: 15 * time.Minute,
		ResolvedBy: "N01", ResolutionNotes: "helped back to bed, no injury", PatientID: "P-2001", RoomName: "7A"})[0]
	for _, e := range []struct {
		seq           int
		action, actor string
		actorID       string
		fromSt, toSt  string
		detail        string
	}{
		{3, "PAGED", "system", "", "ASSIGNED", "ASSIGNED", `{"staff_id": "N01", "step": "assign"}`},
		{1, "CREATED", "system", "", "", "OPEN", `{"alert_type": "FALL_DETECTED", "severity": "HIGH", "source": "bedside-monitor"}`},
		{5, "RESOLVED", "staff", "N01", "ACKNOWLEDGED", "RESOLVED", `{}`},
		{2, "ASSIGNED", "system", "", "OPEN", "ASSIGNED", `{"staff_id": "N01", "role": "NURSE"}`},
		{4, "ACKNOWLEDGED", "staff", "N01", "ASSIGNED", "ACKNOWLEDGED", `{}`},
	} {
		_, err := env.DB.ExecContext(context.Background(), `
			INSERT INTO incident_events (incident_id, seq, action, actor_type, actor_id, from_status, to_status, at, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, e.seq, e.action, e.actor, e.actorID, e.fromSt, e.toSt, opened.Add(time.Duration(e.seq)*time.Second), e.detail)
		require.NoError(t, err)
	}

	var d api.IncidentDetailView
	resp := s.call(t, "GET", "/v1/incidents/"+id, token, "", &d)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, id, d.ID)
	require.Equal(t, "RESOLVED", d.Status)
	require.Equal(t, "P-2001", d.PatientID)
	require.Equal(t, "N01", *d.ResolvedBy)
	require.Equal(t, "Amelia Hart", *d.ResolvedByName)
	require.Equal(t, "helped back to bed, no injury", d.ResolutionNotes)
	require.NotEmpty(t, d.WebUIURL)
	require.Len(t, d.Timeline, 5)
	actions := []string{}
	for i, ev := range d.Timeline {
		require.Equal(t, i+1, ev.Seq)
		require.True(t, opened.Add(time.Duration(i+1)*time.Second).Equal(ev.At))
		actions = append(actions, ev.Action)
		if ev.ActorType == "staff" {
			require.Equal(t, "Amelia Hart", *ev.ActorName)
		}
	}
	require.Equal(t, []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "RESOLVED"}, actions)
	require.JSONEq(t, `{"staff_id": "N01", "role": "NURSE"}`, string(d.Timeline[1].Detail))

	// The id is matched whatever its case.
	var upper api.IncidentDetailView
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents/"+toUpperASCII(id), token, "", &upper).StatusCode)
	require.Equal(t, id, upper.ID)
}

func toUpperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestIncidentsRead_Metrics(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "c01")
	base := incReadWindow(2000)
	sec := time.Second
	incReadInsert(t,
		incReadRow{Opened: base, Status: "RESOLVED", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST", AssignedTo: "D01", Assign: sec, Page: 2 * sec, Ack: 10 * sec, Resolve: 600 * sec, ResolvedBy: "D01"},
		incReadRow{Opened: base.Add(time.Hour), Status: "RESOLVED", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST", AssignedTo: "D01", Assign: sec, Page: 2 * sec, Ack: 20 * sec, Resolve: 1200 * sec, ResolvedBy: "D01"},
		incReadRow{Opened: base.Add(2 * time.Hour), Status: "ACKNOWLEDGED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N01", Assign: sec, Page: 2 * sec, Ack: 30 * sec, Resolve: incReadNever},
		incReadRow{Opened: base.Add(3 * time.Hour), Status: "ASSIGNED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N01", Assign: sec, Page: 2 * sec, Ack: incReadNever, Resolve: incReadNever},
	)

	var m api.IncidentMetricsReport
	resp := s.call(t, "GET", "/v1/incidents/metrics?"+incReadQuery(base, nil), token, "", &m)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, base.Equal(m.From))
	require.True(t, base.Add(24*time.Hour).Equal(m.To))
	require.Equal(t, 4, m.Totals.Incidents)
	require.Equal(t, 3, m.Totals.MTTA.Count, "the unacknowledged incident is excluded")
	require.InDelta(t, 20, *m.Totals.MTTA.MeanSeconds, 1e-6)
	require.InDelta(t, 20, *m.Totals.MTTA.MedianSeconds, 1e-6)
	require.InDelta(t, 28, *m.Totals.MTTA.P90Seconds, 1e-6)
	require.Equal(t, 2, m.Totals.MTTR.Count)
	require.InDelta(t, 900, *m.Totals.MTTR.MeanSeconds, 1e-6)
	require.Equal(t, map[string]int{"OPEN": 0, "ASSIGNED": 1, "ACKNOWLEDGED": 1, "IN_PROGRESS": 0, "RESOLVED": 2}, m.ByStatus)
	require.Len(t, m.BySeverity, 4)
	require.Equal(t, "CRITICAL", m.BySeverity[0].Severity)
	require.Equal(t, 2, m.BySeverity[0].Incidents)
	require.InDelta(t, 15, *m.BySeverity[0].MTTA.MedianSeconds, 1e-6)
	require.Len(t, m.ByStaff, 2)
	require.Equal(t, "D01", m.ByStaff[0].StaffID)
	require.Equal(t, "Dr Hannah Lindqvist", m.ByStaff[0].StaffName)
	require.Equal(t, "N01", m.ByStaff[1].StaffID)
	require.Equal(t, 2, m.ByStaff[1].Incidents)
	require.Equal(t, 1, m.ByStaff[1].MTTA.Count)
	require.Zero(t, m.ByStaff[1].MTTR.Count)
	require.Nil(t, m.ByStaff[1].MTTR.MedianSeconds)

	t.Run("shape", func(t *testing.T) {
		var raw map[string]any
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents/metrics?"+incReadQuery(base, nil), token, "", &raw).StatusCode)
		for _, key := range []string{"from", "to", "totals", "by_status", "by_severity", "by_staff"} {
			require.Contains(t, raw, key)
		}
		totals := raw["totals"].(map[string]any)
		for _, key := range []string{"incidents", "mtta", "mttr", "time_to_assign", "time_to_first_page"} {
			require.Contains(t, totals, key)
		}
		mttr := raw["by_staff"].([]any)[1].(map[string]any)["mttr"].(map[string]any)
		require.Equal(t, map[string]any{"count": float64(0), "mean_seconds": nil, "median_seconds": nil, "p90_seconds": nil}, mttr)
	})

	t.Run("default window is the last seven days", func(t *testing.T) {
		var m api.IncidentMetricsReport
		before := time.Now()
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents/metrics", token, "", &m).StatusCode)
		require.WithinDuration(t, before, m.To, 5*time.Second)
		require.Equal(t, 7*24*time.Hour, m.To.Sub(m.From))
	})
}
