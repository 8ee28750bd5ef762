//go:build integration

package oncall_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database with the demo staff seeded.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "oncall", &db, seedDemo)) }

// london is the demo hospital's time zone.
var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

func schedule() *oncall.Schedule { return &oncall.Schedule{DB: db, Location: london} }

// local parses a London wall-clock time, "2026-07-15 10:00" (a Wednesday).
func local(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, london)
	if err != nil {
		tm, err = time.ParseInLocation("2006-01-02 15:04", s, london)
	}
	require.NoError(t, err)
	return tm
}

func ids(people []oncall.Person) []string {
	out := make([]string, len(people))
	for i, p := range people {
		out[i] = p.ID
	}
	return out
}

// addOverride makes staffID cover role over [from, to) until the test ends.
func addOverride(t *testing.T, role, staffID string, from, to time.Time) {
	t.Helper()
	var id int64
	require.NoError(t, db.GetContext(context.Background(), &id, `
		INSERT INTO oncall_overrides (role, staff_id, starts_at, ends_at, reason)
		VALUES ($1, $2, $3, $4, 'test') RETURNING id`, role, staffID, from, to))
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DELETE FROM oncall_overrides WHERE id = $1`, id)
		require.NoError(t, err)
	})
}

// setUnavailable marks staffID unavailable until the test ends.
func setUnavailable(t *testing.T, staffID string) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `UPDATE staff SET available = false WHERE id = $1`, staffID)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `UPDATE staff SET available = true WHERE id = $1`, staffID)
		require.NoError(t, err)
	})
}

// addIncident inserts an incident with status assigned to assignee (nil for
// nobody) and returns its id. Every incident, and with it every page, is
// deleted when the test ends.
func addIncident(t *testing.T, assignee *string, status string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	now := time.Now()
	_, err := db.ExecContext(context.Background(), `
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity,
			patient_id, status, assigned_to, opened_at, last_alert_at)
		VALUES ($1, $2, $3, 'FALL_DETECTED', 'HIGH', 'P001', $4, $5, $6, $6)`,
		id, "incident:"+id.String(), id.String(), status, assignee, now)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DELETE FROM incidents`)
		require.NoError(t, err)
	})
	return id
}

// assign gives staffID n incidents with status.
func assign(t *testing.T, staffID, status string, n int) {
	t.Helper()
	for range n {
		addIncident(t, &staffID, status)
	}
}

// page records a page to recipient with outbox status, sent at sentAt.
func page(t *testing.T, recipient, status string, sentAt time.Time) {
	t.Helper()
	incident := addIncident(t, nil, "RESOLVED")
	var sent *time.Time
	if status == "sent" {
		sent = &sentAt
	}
	_, err := db.ExecContext(context.Background(), `
		INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, sent_at, created_at)
		VALUES ($1, 'page', $2, 'sms', $3, $4, $5)`, incident, recipient, status, sent, sentAt)
	require.NoError(t, err)
}

func TestOnCallFollowsRotations(t *testing.T) {
	tests := []struct {
		role string
		at   string
		want []string
	}{
		{"NURSE", "2026-07-15 07:59:59", []string{"N05", "N06"}},
		{"NURSE", "2026-07-15 08:00", []string{"N01", "N02"}},
		{"NURSE", "2026-07-15 16:00", []string{"N03", "N04"}},
		{"NURSE", "2026-07-15 23:59:59", []string{"N03", "N04"}},
		{"NURSE", "2026-07-16 00:00", []string{"N05", "N06"}},
		{"EMERGENCY_DOCTOR", "2026-07-15 10:00", []string{"D01", "D04"}},
		{"EMERGENCY_DOCTOR", "2026-07-15 20:00", []string{"D02"}},
		{"EMERGENCY_DOCTOR", "2026-07-15 03:00", []string{"D03"}},
		{"CARDIOLOGIST", "2026-07-15 10:00", []string{"S01"}},
		{"CARDIOLOGIST", "2026-07-15 20:00", []string{"S02"}},
		{"CARDIOLOGIST", "2026-07-15 03:00", []string{}},
		{"BIOMEDICAL_ENGINEER", "2026-07-19 17:00", []string{"E02"}},
		{"CHARGE_NURSE", "2026-07-15 03:00", []string{"C03"}},
		// 08:30 BST on the day the clocks go forward is 07:30 UTC.
		{"NURSE", "2026-03-29 08:30", []string{"N01", "N02"}},
		// 07:30 GMT on the day the clocks go back.
		{"NURSE", "2026-10-25 07:30", []string{"N05", "N06"}},
		{"NO_SUCH_ROLE", "2026-07-15 10:00", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.role+" "+tc.at, func(t *testing.T) {
			people, err := schedule().OnCall(context.Background(), tc.role, local(t, tc.at))
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(people))
		})
	}

	t.Run("person fields", func(t *testing.T) {
		people, err := schedule().OnCall(context.Background(), "CHARGE_NURSE", local(t, "2026-07-15 10:00"))
		require.NoError(t, err)
		require.Len(t, people, 1)
		p := people[0]
		require.Equal(t, "C01", p.ID)
		require.Equal(t, "CHARGE_NURSE", p.Role)
		require.Equal(t, "charge", p.Access)
		require.Equal(t, "c01@demo-hospital.invalid", p.Email)
		require.NotEmpty(t, p.Name)
		require.Regexp(t, `^\+447700900\d{3}$`, p.Phone)
	})
}

func TestOverrideReplacesRotationForItsWindowOnly(t *testing.T) {
	// A01 (the admin, a nurse without a rotation) and S10 cover NURSE from
	// 10:00 to 12:00 on Wednesday.
	addOverride(t, "NURSE", "A01", local(t, "2026-07-15 10:00"), local(t, "2026-07-15 12:00"))
	addOverride(t, "NURSE", "S10", local(t, "2026-07-15 11:00"), local(t, "2026-07-15 13:00"))

	tests := []struct {
		name string
		role string
		at   string
		want []string
	}{
		{"before the window", "NURSE", "2026-07-15 09:59:59", []string{"N01", "N02"}},
		{"start is inclusive", "NURSE", "2026-07-15 10:00", []string{"A01"}},
		{"overlapping overrides", "NURSE", "2026-07-15 11:30", []string{"A01", "S10"}},
		{"end is exclusive", "NURSE", "2026-07-15 12:00", []string{"S10"}},
		{"after every window", "NURSE", "2026-07-15 13:00", []string{"N01", "N02"}},
		{"same time next day", "NURSE", "2026-07-16 10:30", []string{"N01", "N02"}},
		{"other roles keep their rotation", "PSYCHIATRIST", "2026-07-15 11:30", []string{"S10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			people, err := schedule().OnCall(context.Background(), tc.role, local(t, tc.at))
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(people))
		})
	}
}

func TestUnavailableStaffAreNotOnCall(t *testing.T) {
	ctx := context.Background()
	setUnavailable(t, "N01")
	setUnavailable(t, "A01")
	addOverride(t, "EMERGENCY_DOCTOR", "A01", local(t, "2026-07-15 10:00"), local(t, "2026-07-15 12:00"))

	tests := []struct {
		name string
		role string
		at   string
		want []string
	}{
		{"rotation", "NURSE", "2026-07-15 09:00", []string{"N02"}},
		{"other shifts unaffected", "NURSE", "2026-07-15 17:00", []string{"N03", "N04"}},
		// The override still replaces the rotation: nobody covers the role.
		{"override of an unavailable person", "EMERGENCY_DOCTOR", "2026-07-15 10:30", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			people, err := schedule().OnCall(ctx, tc.role, local(t, tc.at))
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(people))
		})
	}

	t.Run("never picked", func(t *testing.T) {
		assign(t, "N02", "IN_PROGRESS", 3)
		p, err := schedule().PickAssignee(ctx, []string{"NURSE"}, local(t, "2026-07-15 09:00"), nil)
		require.NoError(t, err)
		require.Equal(t, "N02", p.ID)
		require.Equal(t, 1, p.Candidates)
	})
}

func TestOnCallAnyRole(t *testing.T) {
	ctx := context.Background()

	t.Run("day", func(t *testing.T) {
		people, err := schedule().OnCallAnyRole(ctx, local(t, "2026-07-15 10:00"))
		require.NoError(t, err)
		require.Equal(t, []string{
			"C01", "D01", "D04", "E01", "N01", "N02",
			"S01", "S03", "S05", "S07", "S09", "S10", "S11", "S12",
		}, ids(people))
	})

	t.Run("night", func(t *testing.T) {
		people, err := schedule().OnCallAnyRole(ctx, local(t, "2026-07-15 03:00"))
		require.NoError(t, err)
		require.Equal(t, []string{"C03", "D03", "N05", "N06"}, ids(people))
	})

	t.Run("overrides apply per role and people appear once", func(t *testing.T) {
		// N05 also covers CHARGE_NURSE, replacing C03 for that role only.
		addOverride(t, "CHARGE_NURSE", "N05", local(t, "2026-07-15 02:00"), local(t, "2026-07-15 04:00"))
		people, err := schedule().OnCallAnyRole(ctx, local(t, "2026-07-15 03:00"))
		require.NoError(t, err)
		require.Equal(t, []string{"D03", "N05", "N06"}, ids(people))
	})
}

func TestPickAssigneeLeastBusy(t *testing.T) {
	ctx := context.Background()
	at := local(t, "2026-07-15 10:00") // N01 and N02 are the day nurses.

	tests := []struct {
		name       string
		setup      func(t *testing.T)
		want       string
		wantLoad   oncall.Load
		wantReason string
	}{
		{
			name:       "idle tie goes to the lower id",
			setup:      func(*testing.T) {},
			want:       "N01",
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 0 open, never paged",
		},
		{
			name:       "fewer open incidents",
			setup:      func(t *testing.T) { assign(t, "N01", "ASSIGNED", 1) },
			want:       "N02",
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 0 open, never paged",
		},
		{
			name: "fewer in progress beats fewer open",
			setup: func(t *testing.T) {
				assign(t, "N01", "ASSIGNED", 1)
				assign(t, "N01", "ACKNOWLEDGED", 1)
				assign(t, "N02", "IN_PROGRESS", 1)
			},
			want:       "N01",
			wantLoad:   oncall.Load{Open: 2},
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 2 open, never paged",
		},
		{
			name: "in progress counts as open too",
			setup: func(t *testing.T) {
				assign(t, "N01", "IN_PROGRESS", 1)
				assign(t, "N02", "IN_PROGRESS", 1)
				assign(t, "N02", "ASSIGNED", 1)
			},
			want:       "N01",
			wantLoad:   oncall.Load{InProgress: 1, Open: 1},
			wantReason: "NURSE on call; least busy of 2: 1 in progress, 1 open, never paged",
		},
		{
			name: "resolved and unassigned-open incidents do not count",
			setup: func(t *testing.T) {
				assign(t, "N01", "RESOLVED", 3)
				assign(t, "N01", "OPEN", 1)
			},
			want:       "N01",
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 0 open, never paged",
		},
		{
			name: "tie broken by longest since last page",
			setup: func(t *testing.T) {
				assign(t, "N01", "ASSIGNED", 1)
				assign(t, "N02", "ASSIGNED", 1)
				page(t, "N01", "sent", at.Add(-5*time.Minute))
				page(t, "N02", "sent", at.Add(-time.Hour))
				page(t, "N02", "sent", at.Add(-30*time.Minute))
			},
			want:       "N02",
			wantLoad:   oncall.Load{Open: 1, LastPagedAt: new(at.Add(-30 * time.Minute))},
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 1 open, last paged 30m ago",
		},
		{
			name:       "never paged beats paged",
			setup:      func(t *testing.T) { page(t, "N01", "sent", at.Add(-24*time.Hour)) },
			want:       "N02",
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 0 open, never paged",
		},
		{
			name: "only sent pages count",
			setup: func(t *testing.T) {
				page(t, "N01", "failed", at.Add(-time.Minute))
				page(t, "N01", "pending", at.Add(-time.Minute))
				page(t, "N02", "sent", at.Add(-2*time.Hour))
			},
			want:       "N01",
			wantReason: "NURSE on call; least busy of 2: 0 in progress, 0 open, never paged",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			p, err := schedule().PickAssignee(ctx, []string{"NURSE", "EMERGENCY_DOCTOR"}, at, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.ID)
			require.Equal(t, "NURSE", p.Role)
			require.False(t, p.Fallback)
			require.Equal(t, 2, p.Candidates)
			require.Equal(t, tc.wantLoad.InProgress, p.Load.InProgress)
			require.Equal(t, tc.wantLoad.Open, p.Load.Open)
			if tc.wantLoad.LastPagedAt == nil {
				require.Nil(t, p.Load.LastPagedAt)
			} else {
				require.NotNil(t, p.Load.LastPagedAt)
				require.True(t, tc.wantLoad.LastPagedAt.Equal(*p.Load.LastPagedAt))
			}
			require.Equal(t, tc.wantReason, p.Reason())
		})
	}
}

func TestPickAssigneeRolesExcludeAndFallback(t *testing.T) {
	ctx := context.Background()
	day := local(t, "2026-07-15 10:00")
	night := local(t, "2026-07-15 03:00")

	tests := []struct {
		name           string
		setup          func(t *testing.T)
		roles          []string
		at             time.Time
		exclude        []string
		want           string
		wantRole       string
		wantFallback   bool
		wantCandidates int
	}{
		{
			name:  "first role with anyone wins",
			roles: []string{"CARDIOLOGIST", "EMERGENCY_DOCTOR"}, at: day,
			want: "S01", wantRole: "CARDIOLOGIST", wantCandidates: 1,
		},
		{
			name:  "role with nobody on call is skipped",
			roles: []string{"CARDIOLOGIST", "EMERGENCY_DOCTOR"}, at: night,
			want: "D03", wantRole: "EMERGENCY_DOCTOR", wantCandidates: 1,
		},
		{
			name:  "excluded people are skipped",
			roles: []string{"NURSE"}, at: day, exclude: []string{"N01"},
			want: "N02", wantRole: "NURSE", wantCandidates: 1,
		},
		{
			name:  "a role whose people are all excluded is skipped",
			roles: []string{"NURSE", "EMERGENCY_DOCTOR"}, at: day, exclude: []string{"N01", "N02", "D01"},
			want: "D04", wantRole: "EMERGENCY_DOCTOR", wantCandidates: 1,
		},
		{
			name:  "fallback to anyone on call, least busy",
			setup: func(t *testing.T) { assign(t, "C03", "IN_PROGRESS", 1) },
			roles: []string{"CARDIOLOGIST", "PULMONOLOGIST"}, at: night,
			want: "D03", wantRole: "EMERGENCY_DOCTOR", wantFallback: true, wantCandidates: 4,
		},
		{
			name:  "fallback respects exclude",
			roles: []string{"CARDIOLOGIST"}, at: night, exclude: []string{"C03", "D03"},
			want: "N05", wantRole: "NURSE", wantFallback: true, wantCandidates: 2,
		},
		{
			name: "fallback reports the role the person is on call for",
			setup: func(t *testing.T) {
				addOverride(t, "CHARGE_NURSE", "S10", night.Add(-time.Hour), night.Add(time.Hour))
				assign(t, "N05", "ASSIGNED", 1)
				assign(t, "N06", "ASSIGNED", 1)
			},
			roles: []string{"CARDIOLOGIST"}, at: night, exclude: []string{"D03"},
			want: "S10", wantRole: "CHARGE_NURSE", wantFallback: true, wantCandidates: 3,
		},
		{
			name:  "no roles at all falls back",
			roles: nil, at: night,
			want: "C03", wantRole: "CHARGE_NURSE", wantFallback: true, wantCandidates: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			p, err := schedule().PickAssignee(ctx, tc.roles, tc.at, tc.exclude)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.ID)
			require.Equal(t, tc.wantRole, p.Role)
			require.Equal(t, tc.wantFallback, p.Fallback)
			require.Equal(t, tc.wantCandidates, p.Candidates)
			if tc.wantFallback {
				require.Contains(t, p.Reason(), "fallback")
			}
		})
	}
}

func TestPickAssigneeNobodyOnCall(t *testing.T) {
	ctx := context.Background()
	night := local(t, "2026-07-15 03:00")

	tests := []struct {
		name    string
		setup   func(t *testing.T)
		exclude []string
	}{
		{
			name:    "everyone on call excluded",
			exclude: []string{"C03", "D03", "N05", "N06"},
		},
		{
			name: "everyone on call unavailable",
			setup: func(t *testing.T) {
				for _, id := range []string{"C03", "D03", "N05", "N06"} {
					setUnavailable(t, id)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			p, err := schedule().PickAssignee(ctx, []string{"NURSE", "EMERGENCY_DOCTOR"}, night, tc.exclude)
			require.ErrorIs(t, err, oncall.ErrNobodyOnCall)
			require.Nil(t, p)
		})
	}
}

func TestFailsafe(t *testing.T) {
	ctx := context.Background()

	role, err := schedule().FailsafeRole(ctx)
	require.NoError(t, err)
	require.Equal(t, "CHARGE_NURSE", role)

	tests := []struct {
		name    string
		setup   func(t *testing.T)
		at      string
		exclude []string
		want    string // "" means ErrNobodyOnCall
	}{
		{name: "day", at: "2026-07-15 10:00", want: "C01"},
		{name: "evening", at: "2026-07-15 20:00", want: "C02"},
		{name: "night", at: "2026-07-15 03:00", want: "C03"},
		{
			name: "override",
			setup: func(t *testing.T) {
				addOverride(t, "CHARGE_NURSE", "C02", local(t, "2026-07-15 09:00"), local(t, "2026-07-15 11:00"))
			},
			at: "2026-07-15 10:00", want: "C02",
		},
		{
			name: "least busy among several",
			setup: func(t *testing.T) {
				addOverride(t, "CHARGE_NURSE", "C01", local(t, "2026-07-15 09:00"), local(t, "2026-07-15 11:00"))
				addOverride(t, "CHARGE_NURSE", "C02", local(t, "2026-07-15 09:00"), local(t, "2026-07-15 11:00"))
				assign(t, "C01", "ASSIGNED", 1)
			},
			at: "2026-07-15 10:00", want: "C02",
		},
		{
			name: "no fallback to other roles",
			at:   "2026-07-15 10:00", exclude: []string{"C01"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			p, err := schedule().PickFailsafe(ctx, local(t, tc.at), tc.exclude)
			if tc.want == "" {
				require.ErrorIs(t, err, oncall.ErrNobodyOnCall)
				require.Nil(t, p)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, p.ID)
			require.Equal(t, "CHARGE_NURSE", p.Role)
			require.False(t, p.Fallback)
		})
	}
}

func seedDemo(ctx context.Context, db *sqlx.DB) error {
	_, err := demo.SeedStaff(ctx, db, "oncall-test-password")
	return err
}
