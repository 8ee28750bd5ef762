//go:build integration

package incident_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database with the demo staff seeded.
// Each test inserts its incidents in a time window of its own, so tests do
// not see each other's rows.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "incident", &db, seedDemo)) }

func store() *incident.Store { return &incident.Store{DB: db} }

// row is an incident to insert. Durations are offsets from Opened; a
// negative offset leaves the timestamp NULL.
type row struct {
	ID         string
	Opened     time.Time
	Status     string
	Severity   string
	AlertType  string
	AssignedTo string
	Assign     time.Duration
	Page       time.Duration
	Ack        time.Duration
	Progress   time.Duration
	Resolve    time.Duration
	ResolvedBy string
	Notes      string
}

const never = -1 * time.Second

// insert writes incidents as the workflow's projection would.
func insert(t *testing.T, rows ...row) []string {
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
		if r.ID == "" {
			r.ID = uuid.NewString()
		}
		if r.Status == "" {
			r.Status = incident.StatusOpen
		}
		if r.Severity == "" {
			r.Severity = "HIGH"
		}
		if r.AlertType == "" {
			r.AlertType = "FALL_DETECTED"
		}
		var assigned *string
		if r.AssignedTo != "" {
			assigned = &r.AssignedTo
		}
		_, err := db.ExecContext(context.Background(), `
			INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, source,
				status, assigned_to, assigned_role, alert_count, escalation_step, opened_at, assigned_at,
				first_paged_at, acknowledged_at, in_progress_at, resolved_at, resolved_by, resolution_notes,
				last_alert_at, last_seq)
			VALUES ($1, 'incident:' || $2, $2, $3, $4, 'P-TEST', '12B', 'test-monitor',
				$5, $6, 'NURSE', 1, 0, $7, $8, $9, $10, $11, $12, $13, $14, $7, 1)`,
			r.ID, uuid.NewString(), r.AlertType, r.Severity, r.Status, assigned, r.Opened,
			at(r.Opened, r.Assign), at(r.Opened, r.Page), at(r.Opened, r.Ack), at(r.Opened, r.Progress),
			at(r.Opened, r.Resolve), r.ResolvedBy, r.Notes)
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	return ids
}

func listIDs(items []incident.Incident) []string {
	ids := make([]string, 0, len(items))
	for _, in := range items {
		ids = append(ids, in.ID)
	}
	return ids
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	window := incident.Filter{From: base, To: base.Add(24 * time.Hour)}
	// Newest first: ids[0] is the oldest.
	ids := insert(t,
		row{Opened: base.Add(1 * time.Minute), Status: "OPEN", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST", Assign: never, Page: never, Ack: never, Progress: never, Resolve: never},
		row{Opened: base.Add(2 * time.Minute), Status: "ASSIGNED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N01", Assign: time.Second, Page: 2 * time.Second, Ack: never, Progress: never, Resolve: never},
		row{Opened: base.Add(3 * time.Minute), Status: "ACKNOWLEDGED", Severity: "HIGH", AlertType: "FALL_DETECTED", AssignedTo: "N02", Assign: time.Second, Page: 2 * time.Second, Ack: time.Minute, Progress: never, Resolve: never},
		row{Opened: base.Add(4 * time.Minute), Status: "IN_PROGRESS", Severity: "MEDIUM", AlertType: "FEVER_HIGH", AssignedTo: "N01", Assign: time.Second, Page: 2 * time.Second, Ack: time.Minute, Progress: 2 * time.Minute, Resolve: never},
		row{Opened: base.Add(5 * time.Minute), Status: "RESOLVED", Severity: "CRITICAL", AlertType: "CARDIAC_ARREST", AssignedTo: "D01", Assign: time.Second, Page: 2 * time.Second, Ack: time.Minute, Progress: 2 * time.Minute, Resolve: time.Hour, ResolvedBy: "D01", Notes: "stabilised, transferred"},
	)
	// Outside the window: never listed by the cases below.
	insert(t, row{Opened: base.Add(-time.Minute), Assign: never, Page: never, Ack: never, Progress: never, Resolve: never})
	insert(t, row{Opened: base.Add(24 * time.Hour), Assign: never, Page: never, Ack: never, Progress: never, Resolve: never})

	with := func(mod func(*incident.Filter)) incident.Filter {
		f := window
		mod(&f)
		return f
	}
	tests := []struct {
		name   string
		filter incident.Filter
		want   []string
	}{
		{"whole window, newest first", window, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"one status", with(func(f *incident.Filter) { f.Statuses = []string{"ASSIGNED"} }), []string{ids[1]}},
		{"several statuses", with(func(f *incident.Filter) { f.Statuses = []string{"OPEN", "RESOLVED"} }), []string{ids[4], ids[0]}},
		{"one severity", with(func(f *incident.Filter) { f.Severities = []string{"CRITICAL"} }), []string{ids[4], ids[0]}},
		{"several severities", with(func(f *incident.Filter) { f.Severities = []string{"HIGH", "MEDIUM"} }), []string{ids[3], ids[2], ids[1]}},
		{"assignee", with(func(f *incident.Filter) { f.AssignedTo = "N01" }), []string{ids[3], ids[1]}},
		{"assignee with none", with(func(f *incident.Filter) { f.AssignedTo = "S12" }), []string{}},
		{"alert type", with(func(f *incident.Filter) { f.AlertType = "FALL_DETECTED" }), []string{ids[2], ids[1]}},
		{"combined", with(func(f *incident.Filter) {
			f.AlertType, f.Statuses, f.AssignedTo = "FALL_DETECTED", []string{"ASSIGNED", "ACKNOWLEDGED"}, "N02"
		}), []string{ids[2]}},
		{"from is inclusive", with(func(f *incident.Filter) { f.From = base.Add(4 * time.Minute) }), []string{ids[4], ids[3]}},
		{"to is exclusive", with(func(f *incident.Filter) { f.To = base.Add(2 * time.Minute) }), []string{ids[0]}},
		{"empty window", with(func(f *incident.Filter) { f.To = f.From }), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := store().List(ctx, tt.filter)
			require.NoError(t, err)
			require.Equal(t, tt.want, listIDs(page.Items))
			require.Nil(t, page.Next)
		})
	}

	t.Run("item fields", func(t *testing.T) {
		page, err := store().List(ctx, with(func(f *incident.Filter) { f.Statuses = []string{"RESOLVED"} }))
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		in := page.Items[0]
		require.Equal(t, "RESOLVED", in.Status)
		require.Equal(t, "CRITICAL", in.Severity)
		require.Equal(t, "CARDIAC_ARREST", in.AlertType)
		require.Equal(t, "P-TEST", in.PatientID)
		require.Equal(t, "12B", in.Room)
		require.Equal(t, "D01", *in.AssignedTo)
		require.Equal(t, "Dr Hannah Lindqvist", *in.AssigneeName)
		require.Equal(t, base.Add(5*time.Minute), in.OpenedAt)
		require.Equal(t, time.UTC, in.OpenedAt.Location())
		require.Equal(t, base.Add(5*time.Minute+time.Hour), *in.ResolvedAt)
		require.Regexp(t, `^incident:`, in.WorkflowID)

		page, err = store().List(ctx, with(func(f *incident.Filter) { f.Statuses = []string{"OPEN"} }))
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		require.Nil(t, page.Items[0].AssignedTo)
		require.Nil(t, page.Items[0].AssigneeName)
		require.Nil(t, page.Items[0].AcknowledgedAt)
	})

	t.Run("limit out of range", func(t *testing.T) {
		for _, limit := range []int{-1, incident.MaxLimit + 1} {
			_, err := store().List(ctx, with(func(f *incident.Filter) { f.Limit = limit }))
			require.ErrorIs(t, err, incident.ErrInvalidFilter)
		}
	})
}

func TestListPaginationHasNoDuplicatesOrGaps(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC)
	var rows []row
	for i := range 23 {
		// Groups of three share an opened_at, so pages split ties, which
		// the id breaks.
		rows = append(rows, row{Opened: base.Add(time.Duration(i/3) * time.Second), Assign: never, Page: never, Ack: never, Progress: never, Resolve: never})
	}
	ids := insert(t, rows...)
	window := incident.Filter{From: base, To: base.Add(time.Hour)}

	// The expected order: opened_at descending, then id descending.
	want := make([]row, len(rows))
	for i := range rows {
		want[i] = rows[i]
		want[i].ID = ids[i]
	}
	slices.SortFunc(want, func(a, b row) int {
		if c := b.Opened.Compare(a.Opened); c != 0 {
			return c
		}
		return compareUUID(b.ID, a.ID)
	})
	wantIDs := make([]string, 0, len(want))
	for _, r := range want {
		wantIDs = append(wantIDs, r.ID)
	}

	tests := []struct {
		name  string
		limit int
		pages int
	}{
		{"limit 1", 1, 23},
		{"limit 3 (ties on page edges)", 3, 8},
		{"limit 5", 5, 5},
		{"limit 23 (exactly one page)", 23, 1},
		{"limit 200", 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				got   []string
				pages int
			)
			f := window
			f.Limit = tt.limit
			for {
				page, err := store().List(ctx, f)
				require.NoError(t, err)
				pages++
				require.LessOrEqual(t, len(page.Items), tt.limit)
				got = append(got, listIDs(page.Items)...)
				if page.Next == nil {
					break
				}
				require.Len(t, page.Items, tt.limit, "only the last page is short")
				// The cursor survives its string form.
				next, err := incident.DecodeCursor(page.Next.Encode())
				require.NoError(t, err)
				f.After = &next
				require.LessOrEqual(t, pages, 30, "pagination does not end")
			}
			require.Equal(t, wantIDs, got)
			require.Equal(t, tt.pages, pages)
		})
	}

	t.Run("incidents opened later do not disturb a listing in progress", func(t *testing.T) {
		f := window
		f.Limit = 10
		first, err := store().List(ctx, f)
		require.NoError(t, err)
		insert(t, row{Opened: base.Add(30 * time.Minute), Assign: never, Page: never, Ack: never, Progress: never, Resolve: never})
		f.After = first.Next
		second, err := store().List(ctx, f)
		require.NoError(t, err)
		require.Equal(t, wantIDs[10:20], listIDs(second.Items))
	})
}

// compareUUID orders UUIDs as Postgres does (bytewise, which for the
// canonical lower-case text form is the string order).
func compareUUID(a, b string) int {
	ua, ub := uuid.MustParse(a), uuid.MustParse(b)
	return slices.Compare(ua[:], ub[:])
}

func TestGetReturnsTheTimelineInOrder(t *testing.T) {
	ctx := context.Background()
	opened := time.Date(2033, 2, 3, 4, 5, 6, 0, time.UTC)
	id := insert(t, row{Opened: opened, Status: "RESOLVED", Severity: "HIGH", AssignedTo: "N02",
		Assign: time.Second, Page: 2 * time.Second, Ack: 30 * time.Second, Progress: time.Minute, Resolve: 10 * time.Minute,
		ResolvedBy: "N02", Notes: "patient helped back to bed"})[0]
	events := []struct {
		seq       int
		action    string
		actorType string
		actorID   string
		from, to  string
		detail    string
	}{
		// Inserted out of order: the timeline orders by seq.
		{4, "ACKNOWLEDGED", "staff", "N02", "ASSIGNED", "ACKNOWLEDGED", `{}`},
		{1, "CREATED", "system", "", "", "OPEN", `{"alert_type": "FALL_DETECTED", "severity": "HIGH"}`},
		{3, "PAGED", "system", "", "ASSIGNED", "ASSIGNED", `{"staff_id": "N02", "step": "assign"}`},
		{2, "ASSIGNED", "system", "", "OPEN", "ASSIGNED", `{"staff_id": "N02"}`},
		{6, "RESOLVED", "staff", "N02", "IN_PROGRESS", "RESOLVED", `{}`},
		{5, "STARTED_PROGRESS", "staff", "N02", "ACKNOWLEDGED", "IN_PROGRESS", `{}`},
	}
	for _, e := range events {
		_, err := db.ExecContext(ctx, `
			INSERT INTO incident_events (incident_id, seq, action, actor_type, actor_id, from_status, to_status, at, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, e.seq, e.action, e.actorType, e.actorID, e.from, e.to, opened.Add(time.Duration(e.seq)*time.Second), e.detail)
		require.NoError(t, err)
	}

	d, err := store().Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.Equal(t, "RESOLVED", d.Status)
	require.Equal(t, "N02", *d.ResolvedBy)
	require.Equal(t, "Oliver Bennett", *d.ResolvedByName)
	require.Equal(t, "patient helped back to bed", d.ResolutionNotes)
	require.Equal(t, opened, d.LastAlertAt)
	require.Len(t, d.Timeline, len(events))
	wantActions := []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "STARTED_PROGRESS", "RESOLVED"}
	for i, ev := range d.Timeline {
		require.Equal(t, i+1, ev.Seq)
		require.Equal(t, wantActions[i], ev.Action)
		require.Equal(t, opened.Add(time.Duration(i+1)*time.Second), ev.At)
		if ev.ActorType == "staff" {
			require.Equal(t, "Oliver Bennett", *ev.ActorName)
		} else {
			require.Nil(t, ev.ActorName)
		}
	}
	var detail map[string]string
	require.NoError(t, json.Unmarshal(d.Timeline[0].Detail, &detail))
	require.Equal(t, map[string]string{"alert_type": "FALL_DETECTED", "severity": "HIGH"}, detail)

	t.Run("auto-resolved by the source", func(t *testing.T) {
		id := insert(t, row{Opened: opened, Status: "RESOLVED", Assign: never, Page: never, Ack: never, Progress: never, Resolve: time.Minute, ResolvedBy: "source"})[0]
		d, err := store().Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "source", *d.ResolvedBy)
		require.Nil(t, d.ResolvedByName)
		require.Empty(t, d.Timeline)
		require.NotNil(t, d.Timeline, "an empty timeline is [], not null")
	})

	t.Run("unresolved has no resolver", func(t *testing.T) {
		id := insert(t, row{Opened: opened, Assign: never, Page: never, Ack: never, Progress: never, Resolve: never})[0]
		d, err := store().Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, d.ResolvedBy)
		require.Nil(t, d.ResolvedByName)
	})

	t.Run("not found", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
			_, err := store().Get(ctx, id)
			require.ErrorIs(t, err, incident.ErrNotFound)
		}
	})
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2034, 5, 1, 0, 0, 0, 0, time.UTC)
	sec := time.Second
	insert(t,
		// Five acknowledged HIGH incidents: ack after 10, 20, 30, 40, 100 s.
		row{Opened: base, Status: "RESOLVED", Severity: "HIGH", AssignedTo: "N01", Assign: 2 * sec, Page: 3 * sec, Ack: 10 * sec, Progress: 60 * sec, Resolve: 600 * sec, ResolvedBy: "N01"},
		row{Opened: base.Add(time.Hour), Status: "RESOLVED", Severity: "HIGH", AssignedTo: "N01", Assign: 4 * sec, Page: 5 * sec, Ack: 20 * sec, Progress: 60 * sec, Resolve: 1200 * sec, ResolvedBy: "N01"},
		row{Opened: base.Add(2 * time.Hour), Status: "IN_PROGRESS", Severity: "HIGH", AssignedTo: "N02", Assign: 6 * sec, Page: 7 * sec, Ack: 30 * sec, Progress: 60 * sec, Resolve: never},
		row{Opened: base.Add(3 * time.Hour), Status: "ACKNOWLEDGED", Severity: "HIGH", AssignedTo: "N02", Assign: 8 * sec, Page: 9 * sec, Ack: 40 * sec, Progress: never, Resolve: never},
		row{Opened: base.Add(4 * time.Hour), Status: "RESOLVED", Severity: "HIGH", AssignedTo: "N02", Assign: 10 * sec, Page: 11 * sec, Ack: 100 * sec, Progress: 200 * sec, Resolve: 1800 * sec, ResolvedBy: "N02"},
		// Never acknowledged: excluded from MTTA. One was auto-resolved by
		// its source after 300 s, which counts for MTTR only.
		row{Opened: base.Add(5 * time.Hour), Status: "ASSIGNED", Severity: "HIGH", AssignedTo: "N01", Assign: 1 * sec, Page: 1 * sec, Ack: never, Progress: never, Resolve: never},
		row{Opened: base.Add(6 * time.Hour), Status: "RESOLVED", Severity: "CRITICAL", AssignedTo: "D01", Assign: 1 * sec, Page: 2 * sec, Ack: never, Progress: never, Resolve: 300 * sec, ResolvedBy: "source"},
		// Nobody on call: never assigned nor paged.
		row{Opened: base.Add(7 * time.Hour), Status: "OPEN", Severity: "CRITICAL", Assign: never, Page: never, Ack: never, Progress: never, Resolve: never},
	)
	// Outside the window.
	insert(t, row{Opened: base.Add(-time.Second), Status: "RESOLVED", Severity: "HIGH", AssignedTo: "N01", Assign: sec, Page: sec, Ack: 5000 * sec, Progress: never, Resolve: 9000 * sec, ResolvedBy: "N01"})

	m, err := store().Metrics(ctx, base, base.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, base, m.From)
	require.Equal(t, base.Add(24*time.Hour), m.To)

	type stats struct {
		count             int
		mean, median, p90 float64
	}
	check := func(t *testing.T, what string, got incident.DurationStats, want stats) {
		t.Helper()
		require.Equal(t, want.count, got.Count, what)
		if want.count == 0 {
			require.Nil(t, got.MeanSeconds, what)
			require.Nil(t, got.MedianSeconds, what)
			require.Nil(t, got.P90Seconds, what)
			return
		}
		require.InDelta(t, want.mean, *got.MeanSeconds, 1e-6, what+" mean")
		require.InDelta(t, want.median, *got.MedianSeconds, 1e-6, what+" median")
		require.InDelta(t, want.p90, *got.P90Seconds, 1e-6, what+" p90")
	}
	staff := map[string]incident.StaffMetrics{}
	for _, s := range m.ByStaff {
		staff[s.StaffID] = s
	}
	severity := map[string]incident.SeverityMetrics{}
	var severities []string
	for _, s := range m.BySeverity {
		severity[s.Severity] = s
		severities = append(severities, s.Severity)
	}

	tests := []struct {
		name      string
		group     incident.MetricsGroup
		incidents int
		mtta      stats
		mttr      stats
		assign    stats
		page      stats
	}{
		{"totals", m.Totals, 8,
			// 10,20,30,40,100: mean 40, median 30, p90 40+0.6*60 = 76.
			stats{5, 40, 30, 76},
			// 600,1200,1800,300: mean 975, median 900, p90 1200+0.7*600 = 1620.
			stats{4, 975, 900, 1620},
			// 2,4,6,8,10,1,1: mean 32/7, median 4, p90 8+0.4*2 = 8.8.
			stats{7, 32.0 / 7, 4, 8.8},
			// 3,5,7,9,11,1,2: mean 38/7, median 5, p90 9+0.4*2 = 9.8.
			stats{7, 38.0 / 7, 5, 9.8}},
		{"HIGH", severity["HIGH"].MetricsGroup, 6,
			stats{5, 40, 30, 76},
			stats{3, 1200, 1200, 1680},
			stats{6, 31.0 / 6, 5, 9},
			stats{6, 36.0 / 6, 6, 10}},
		{"CRITICAL", severity["CRITICAL"].MetricsGroup, 2,
			stats{}, stats{1, 300, 300, 300}, stats{1, 1, 1, 1}, stats{1, 2, 2, 2}},
		{"MEDIUM has no incidents", severity["MEDIUM"].MetricsGroup, 0, stats{}, stats{}, stats{}, stats{}},
		{"N01", staff["N01"].MetricsGroup, 3,
			stats{2, 15, 15, 19},
			stats{2, 900, 900, 1140},
			stats{3, 7.0 / 3, 2, 3.6},
			stats{3, 3, 3, 4.6}},
		{"N02", staff["N02"].MetricsGroup, 3,
			stats{3, 170.0 / 3, 40, 88},
			stats{1, 1800, 1800, 1800},
			stats{3, 8, 8, 9.6},
			stats{3, 9, 9, 10.6}},
		{"D01", staff["D01"].MetricsGroup, 1,
			stats{}, stats{1, 300, 300, 300}, stats{1, 1, 1, 1}, stats{1, 2, 2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.incidents, tt.group.Incidents)
			check(t, "mtta", tt.group.MTTA, tt.mtta)
			check(t, "mttr", tt.group.MTTR, tt.mttr)
			check(t, "time to assign", tt.group.TimeToAssign, tt.assign)
			check(t, "time to first page", tt.group.TimeToFirstPage, tt.page)
		})
	}

	require.Equal(t, []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}, severities)
	require.Equal(t, map[string]int{"OPEN": 1, "ASSIGNED": 1, "ACKNOWLEDGED": 1, "IN_PROGRESS": 1, "RESOLVED": 4}, m.ByStatus)
	require.Len(t, m.ByStaff, 3, "the unassigned incident has no staff group")
	require.Equal(t, []string{"D01", "N01", "N02"}, []string{m.ByStaff[0].StaffID, m.ByStaff[1].StaffID, m.ByStaff[2].StaffID})
	require.Equal(t, "Amelia Hart", staff["N01"].StaffName)

	t.Run("empty window", func(t *testing.T) {
		m, err := store().Metrics(ctx, base.Add(-48*time.Hour), base.Add(-24*time.Hour))
		require.NoError(t, err)
		require.Zero(t, m.Totals.Incidents)
		check(t, "mtta", m.Totals.MTTA, stats{})
		require.Empty(t, m.ByStaff)
		require.NotNil(t, m.ByStaff)
		require.Len(t, m.BySeverity, 4)
		require.Equal(t, map[string]int{"OPEN": 0, "ASSIGNED": 0, "ACKNOWLEDGED": 0, "IN_PROGRESS": 0, "RESOLVED": 0}, m.ByStatus)
	})

	t.Run("inverted window", func(t *testing.T) {
		_, err := store().Metrics(ctx, base.Add(time.Hour), base)
		require.ErrorIs(t, err, incident.ErrInvalidFilter)
	})
}

func seedDemo(ctx context.Context, db *sqlx.DB) error {
	_, err := demo.SeedStaff(ctx, db, "pw-12345678")
	return err
}
