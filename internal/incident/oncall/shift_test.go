package oncall_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident/oncall"
)

func TestShiftAt(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)

	// local is a wall-clock time in London; utc an instant given in UTC.
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation(time.DateTime, s, london)
		require.NoError(t, err)
		return tm
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return tm
	}

	tests := []struct {
		name        string
		at          time.Time
		loc         *time.Location
		wantShift   string
		wantWeekday int
	}{
		// Boundaries on an ordinary summer Wednesday (BST, UTC+1).
		{"last second of night", local("2026-07-15 07:59:59"), london, oncall.ShiftNight, 3},
		{"day starts at 08:00", local("2026-07-15 08:00:00"), london, oncall.ShiftDay, 3},
		{"last second of day", local("2026-07-15 15:59:59"), london, oncall.ShiftDay, 3},
		{"evening starts at 16:00", local("2026-07-15 16:00:00"), london, oncall.ShiftEvening, 3},
		{"last second of evening", local("2026-07-15 23:59:59"), london, oncall.ShiftEvening, 3},
		{"night starts at midnight on the next day", local("2026-07-16 00:00:00"), london, oncall.ShiftNight, 4},
		{"winter boundary (GMT)", local("2026-01-05 08:00:00"), london, oncall.ShiftDay, 1},

		// The weekday is that of the local date, not the UTC date.
		{"after local midnight, before UTC midnight", utc("2026-07-15T23:30:00Z"), london, oncall.ShiftNight, 4},
		{"Sunday evening in winter is Sunday in London too", utc("2026-01-04T23:30:00Z"), london, oncall.ShiftEvening, 7},
		{"after UTC midnight, before local midnight", utc("2026-07-15T03:00:00Z"), newYork, oncall.ShiftEvening, 2},
		{"Sunday is 7", local("2026-07-19 12:00:00"), london, oncall.ShiftDay, 7},

		// Spring forward, Sunday 2026-03-29: 01:00 GMT becomes 02:00 BST.
		{"spring: before the change", utc("2026-03-29T00:30:00Z"), london, oncall.ShiftNight, 7},
		{"spring: after the change", utc("2026-03-29T01:30:00Z"), london, oncall.ShiftNight, 7},
		{"spring: last second of night", utc("2026-03-29T06:59:59Z"), london, oncall.ShiftNight, 7},
		{"spring: day starts at 08:00 BST = 07:00 UTC", utc("2026-03-29T07:00:00Z"), london, oncall.ShiftDay, 7},
		{"spring: 07:30 UTC is already day", utc("2026-03-29T07:30:00Z"), london, oncall.ShiftDay, 7},
		{"spring: evening starts at 15:00 UTC", utc("2026-03-29T15:00:00Z"), london, oncall.ShiftEvening, 7},
		{"spring: local midnight is 23:00 UTC, Monday", utc("2026-03-29T23:00:00Z"), london, oncall.ShiftNight, 1},
		{"spring: last GMT second of Saturday evening", utc("2026-03-28T23:59:59Z"), london, oncall.ShiftEvening, 6},

		// Fall back, Sunday 2026-10-25: 02:00 BST becomes 01:00 GMT.
		{"autumn: Saturday 23:59:59 BST", utc("2026-10-24T22:59:59Z"), london, oncall.ShiftEvening, 6},
		{"autumn: Sunday midnight BST", utc("2026-10-24T23:00:00Z"), london, oncall.ShiftNight, 7},
		{"autumn: first 01:30 (BST)", utc("2026-10-25T00:30:00Z"), london, oncall.ShiftNight, 7},
		{"autumn: second 01:30 (GMT)", utc("2026-10-25T01:30:00Z"), london, oncall.ShiftNight, 7},
		{"autumn: 07:30 UTC is still night", utc("2026-10-25T07:30:00Z"), london, oncall.ShiftNight, 7},
		{"autumn: day starts at 08:00 GMT", utc("2026-10-25T08:00:00Z"), london, oncall.ShiftDay, 7},
		{"autumn: evening starts at 16:00 GMT", utc("2026-10-25T16:00:00Z"), london, oncall.ShiftEvening, 7},

		{"nil location means UTC", utc("2026-07-15T23:30:00Z"), nil, oncall.ShiftEvening, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shift, weekday := oncall.ShiftAt(tc.at, tc.loc)
			require.Equal(t, tc.wantShift, shift)
			require.Equal(t, tc.wantWeekday, weekday)
		})
	}
}
