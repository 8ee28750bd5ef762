package oncall

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

func TestPickReason(t *testing.T) {
	at := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	paged := func(d time.Duration) *time.Time {
		tm := at.Add(-d)
		return &tm
	}
	tests := []struct {
		name string
		pick Pick
		want string
	}{
		{
			name: "least busy of several",
			pick: Pick{Role: "NURSE", Candidates: 3, Load: Load{Open: 1, LastPagedAt: paged(12 * time.Minute)}, at: at},
			want: "NURSE on call; least busy of 3: 0 in progress, 1 open, last paged 12m ago",
		},
		{
			name: "only candidate, never paged",
			pick: Pick{Role: "CARDIOLOGIST", Candidates: 1, Load: Load{InProgress: 2, Open: 3}, at: at},
			want: "CARDIOLOGIST on call; only candidate: 2 in progress, 3 open, never paged",
		},
		{
			name: "fallback",
			pick: Pick{Role: "CHARGE_NURSE", Fallback: true, Candidates: 4, Load: Load{LastPagedAt: paged(3*time.Hour + 5*time.Minute)}, at: at},
			want: "nobody on call for the requested roles, fallback to anyone on call; CHARGE_NURSE on call; least busy of 4: 0 in progress, 0 open, last paged 3h5m ago",
		},
		{
			name: "seconds",
			pick: Pick{Role: "NURSE", Candidates: 2, Load: Load{LastPagedAt: paged(40 * time.Second)}, at: at},
			want: "NURSE on call; least busy of 2: 0 in progress, 0 open, last paged 40s ago",
		},
		{
			name: "days",
			pick: Pick{Role: "NURSE", Candidates: 2, Load: Load{LastPagedAt: paged(50 * time.Hour)}, at: at},
			want: "NURSE on call; least busy of 2: 0 in progress, 0 open, last paged 2d2h ago",
		},
		{
			name: "paged after the pick instant",
			pick: Pick{Role: "NURSE", Candidates: 2, Load: Load{LastPagedAt: paged(-time.Minute)}, at: at},
			want: "NURSE on call; least busy of 2: 0 in progress, 0 open, last paged just now",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.pick.Reason())
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		sched *Schedule
	}{
		{"nil schedule", nil},
		{"no database", &Schedule{Location: time.UTC}},
		{"no location", &Schedule{DB: &sqlx.DB{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.sched.Validate(), ErrInvalidSchedule)
			_, err := tc.sched.OnCall(ctx, "NURSE", at)
			require.ErrorIs(t, err, ErrInvalidSchedule)
			_, err = tc.sched.OnCallAnyRole(ctx, at)
			require.ErrorIs(t, err, ErrInvalidSchedule)
			_, err = tc.sched.PickAssignee(ctx, []string{"NURSE"}, at, nil)
			require.ErrorIs(t, err, ErrInvalidSchedule)
			_, err = tc.sched.FailsafeRole(ctx)
			require.ErrorIs(t, err, ErrInvalidSchedule)
			_, err = tc.sched.PickFailsafe(ctx, at, nil)
			require.ErrorIs(t, err, ErrInvalidSchedule)
		})
	}
	require.NoError(t, (&Schedule{DB: &sqlx.DB{}, Location: time.UTC}).Validate())
}
