//go:build integration

package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident"
)

func TestMetricsSeries(t *testing.T) {
	ctx := context.Background()
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	sec := time.Second
	// 2036-03-30 is the Sunday summer time starts in London: that day has
	// 23 hours. Local midnights: 29 March 00:00 GMT, 30 March 00:00 GMT,
	// 31 March 00:00 BST (23:00 UTC on the 30th).
	day1 := time.Date(2036, 3, 29, 0, 0, 0, 0, london)
	day2 := time.Date(2036, 3, 30, 0, 0, 0, 0, london)
	day3 := time.Date(2036, 3, 31, 0, 0, 0, 0, london)
	require.Equal(t, 23*time.Hour, day3.Sub(day2))
	insert(t,
		// Day 1: two incidents, acknowledged after 10 and 30 s, one resolved
		// after 600 s; assigned after 2 and 4 s.
		row{Opened: day1.Add(9 * time.Hour), Status: "RESOLVED", AssignedTo: "N01", Assign: 2 * sec, Page: 3 * sec, Ack: 10 * sec, Progress: 20 * sec, Resolve: 600 * sec, ResolvedBy: "N01"},
		row{Opened: day1.Add(10 * time.Hour), Status: "ACKNOWLEDGED", AssignedTo: "N01", Assign: 4 * sec, Page: 5 * sec, Ack: 30 * sec, Progress: never, Resolve: never},
		// Day 2: none. Day 3: 23:30 UTC on the 30th is already the 31st in
		// London; never assigned.
		row{Opened: day3.Add(30 * time.Minute), Status: "OPEN", Assign: never, Page: never, Ack: never, Progress: never, Resolve: never},
		// After the window.
		row{Opened: day3.Add(25 * time.Hour), Status: "OPEN", Assign: never, Page: never, Ack: never, Progress: never, Resolve: never},
	)

	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		from, to time.Time
		bucket   incident.Bucket
		loc      *time.Location
		want     []incident.SeriesPoint
	}{
		{
			name: "days in London", from: day1, to: day3.Add(24 * time.Hour), bucket: incident.BucketDay, loc: london,
			want: []incident.SeriesPoint{
				{Start: day1, Incidents: 2, MTTASeconds: f(20), MTTRSeconds: f(600), TimeToAssignSeconds: f(3)},
				{Start: day2},
				{Start: day3, Incidents: 1},
			},
		},
		{
			// In UTC the third incident opens on the 30th.
			name: "days in UTC, from mid-day", from: day1.Add(9*time.Hour + 30*time.Minute), to: day2.Add(24 * time.Hour), bucket: incident.BucketDay,
			want: []incident.SeriesPoint{
				{Start: day1, Incidents: 1, MTTASeconds: f(30), TimeToAssignSeconds: f(4)},
				{Start: day2, Incidents: 1},
			},
		},
		{
			name: "hours", from: day1.Add(9 * time.Hour), to: day1.Add(11 * time.Hour), bucket: incident.BucketHour, loc: london,
			want: []incident.SeriesPoint{
				{Start: day1.Add(9 * time.Hour), Incidents: 1, MTTASeconds: f(10), MTTRSeconds: f(600), TimeToAssignSeconds: f(2)},
				{Start: day1.Add(10 * time.Hour), Incidents: 1, MTTASeconds: f(30), TimeToAssignSeconds: f(4)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store().MetricsSeries(ctx, tt.from, tt.to, tt.bucket, tt.loc)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				require.True(t, tt.want[i].Start.Equal(got[i].Start), "bucket %d starts %v, want %v", i, got[i].Start, tt.want[i].Start)
				got[i].Start = tt.want[i].Start
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			from, to time.Time
			bucket   incident.Bucket
		}{
			{day2, day1, incident.BucketDay},
			{day1, day1, incident.BucketDay},
			{day1, day2, "week"},
			{day1, day1.AddDate(5, 0, 0), incident.BucketDay},
		} {
			_, err := store().MetricsSeries(ctx, c.from, c.to, c.bucket, nil)
			require.ErrorIs(t, err, incident.ErrInvalidFilter, "%v %v %s", c.from, c.to, c.bucket)
		}
	})
}
