//go:build integration

package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/watch"
)

// insertSnapshots writes n snapshots of watch polled at at.
func insertSnapshots(t *testing.T, watch string, at time.Time, n int) {
	t.Helper()
	_, err := db.Exec(`
		INSERT INTO snapshots (watch_id, poll_id, service_id, polled_at, capacity)
		SELECT $1, $2, 'S' || g, $3, 'HIGH' FROM generate_series(1, $4) g`,
		watch, uuid.NewString(), at, n)
	require.NoError(t, err)
}

func countSnapshots(t *testing.T, watch string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM snapshots WHERE watch_id = $1`, watch))
	return n
}

func TestDeleteOldSnapshots(t *testing.T) {
	// Far in the past, so no other test's snapshots are that old.
	cutoff := time.Date(2001, 3, 1, 3, 30, 0, 0, time.UTC)
	tests := []struct {
		name      string
		old       int
		recent    int
		batch     int
		resumed   int64 // deletions counted by an earlier attempt's heartbeat
		wantTotal int64
	}{
		{"deletes old snapshots and keeps recent ones", 5, 3, 0, 0, 5},
		{"deletes across several batches", 25, 4, 10, 0, 25},
		{"an exact multiple of the batch", 20, 1, 10, 0, 20},
		{"nothing to delete", 0, 2, 10, 0, 0},
		{"a retry carries on the heartbeat's count", 7, 1, 3, 100, 107},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			watch := uuid.NewString()
			t.Cleanup(func() { _, _ = db.Exec(`DELETE FROM snapshots WHERE watch_id = $1`, watch) })
			if tt.old > 0 {
				insertSnapshots(t, watch, cutoff.Add(-48*time.Hour), tt.old)
			}
			insertSnapshots(t, watch, cutoff, tt.recent) // exactly at the cut-off: kept

			var s testsuite.WorkflowTestSuite
			s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
			env := s.NewTestActivityEnvironment()
			a := &activities.CapacityMaintenance{Store: watchStore()}
			env.RegisterActivity(a)
			if tt.resumed > 0 {
				env.SetHeartbeatDetails(tt.resumed)
			}
			val, err := env.ExecuteActivity(a.DeleteOldSnapshots, &activities.DeleteSnapshotsInput{Before: cutoff, BatchSize: tt.batch})
			require.NoError(t, err)
			var res activities.DeleteSnapshotsResult
			require.NoError(t, val.Get(&res))
			require.Equal(t, tt.wantTotal, res.Deleted)
			require.Equal(t, tt.recent, countSnapshots(t, watch))

			// Idempotent: running it again deletes nothing more.
			again, err := (&activities.CapacityMaintenance{Store: watchStore()}).DeleteOldSnapshots(context.Background(),
				&activities.DeleteSnapshotsInput{Before: cutoff, BatchSize: tt.batch})
			require.NoError(t, err)
			require.Zero(t, again.Deleted)
			require.Equal(t, tt.recent, countSnapshots(t, watch))
		})
	}

	t.Run("a missing cut-off is refused", func(t *testing.T) {
		_, err := (&activities.CapacityMaintenance{Store: watchStore()}).DeleteOldSnapshots(context.Background(), &activities.DeleteSnapshotsInput{})
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr))
		require.True(t, appErr.NonRetryable())
	})
}

const summaryChannel = "C0CAPACITY"

// summaryField is an attachment field as Slack receives it.
type summaryField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

type summaryAttachment struct {
	Fallback string         `json:"fallback"`
	Fields   []summaryField `json:"fields"`
}

func setStatuses(t *testing.T, statuses map[string][2]string) {
	t.Helper()
	// The summary reads every current status: start from none.
	_, err := db.Exec(`DELETE FROM service_statuses`)
	require.NoError(t, err)
	for id, s := range statuses {
		_, err := db.Exec(`INSERT INTO service_statuses (service_id, name, capacity, last_seen_at) VALUES ($1, $2, $3, now())`, id, s[0], s[1])
		require.NoError(t, err)
	}
}

func TestPostCapacitySummary(t *testing.T) {
	t.Cleanup(func() { _, _ = db.Exec(`DELETE FROM service_statuses`) })
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	// 13:00 UTC is 14:00 in London in summer.
	at := time.Date(2026, 7, 1, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		statuses   map[string][2]string // id -> name, capacity
		wantText   string
		wantFields []summaryField
	}{
		{
			name: "services below HIGH, worst first then by name",
			statuses: map[string][2]string{
				"1": {"Alpha ED", "LOW"},
				"2": {"Bravo UTC", "NONE"},
				"3": {"Charlie MIU", "HIGH"},
				"4": {"Delta GP", ""},
				"5": {"Aardvark ED", "NONE"},
				"6": {"Echo Pharmacy", "LOW"},
			},
			wantText: "At 14:00, these services are indicating low capacity (a status of NONE means they are not returning in DoS searches).",
			wantFields: []summaryField{
				{"Aardvark ED", ":red_circle: NONE", true},
				{"Bravo UTC", ":red_circle: NONE", true},
				{"Alpha ED", ":large_orange_diamond: LOW", true},
				{"Echo Pharmacy", ":large_orange_diamond: LOW", true},
			},
		},
		{
			name:     "all HIGH (or reset) says so",
			statuses: map[string][2]string{"1": {"Alpha ED", "HIGH"}, "2": {"Bravo UTC", ""}},
			wantText: "At 14:00, there are no services indicating low capacity.",
		},
		{
			name:     "no statuses at all",
			wantText: "At 14:00, there are no services indicating low capacity.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setStatuses(t, tt.statuses)
			srv := slackfake.New(t)
			srv.Token = slackToken
			a := &activities.CapacityMaintenance{
				Store:  watchStore(),
				Slack:  slacknotify.New(slacknotify.Config{Token: slackToken, APIURL: srv.APIURL()}),
				London: london,
			}
			res, err := a.PostCapacitySummary(context.Background(), &activities.PostSummaryInput{Channel: summaryChannel, At: at})
			require.NoError(t, err)
			require.True(t, res.Posted)
			require.Equal(t, len(tt.wantFields), res.Services)
			msgs := srv.Messages(summaryChannel)
			require.Len(t, msgs, 1)
			require.Equal(t, res.TS, msgs[0].TS)
			require.Equal(t, tt.wantText, msgs[0].Text)
			var atts []summaryAttachment
			require.NoError(t, json.Unmarshal(msgs[0].Attachments, &atts))
			require.Len(t, atts, 1)
			require.Equal(t, "Capacity Status Summary", atts[0].Fallback)
			require.Equal(t, tt.wantFields, atts[0].Fields)
		})
	}

	t.Run("nothing is posted without Slack or a channel", func(t *testing.T) {
		srv := slackfake.New(t)
		for _, a := range []*activities.CapacityMaintenance{
			{Store: watchStore()},
			{Store: watchStore(), Slack: slacknotify.New(slacknotify.Config{APIURL: srv.APIURL()})},
		} {
			res, err := a.PostCapacitySummary(context.Background(), &activities.PostSummaryInput{At: at})
			require.NoError(t, err)
			require.False(t, res.Posted)
		}
		require.Zero(t, srv.Calls("chat.postMessage"))
	})

	t.Run("slack errors are classified", func(t *testing.T) {
		tests := []struct {
			name         string
			failure      slackfake.Failure
			errType      string
			nonRetryable bool
		}{
			{"channel not found", slackfake.Failure{Error: "channel_not_found"}, activities.ErrTypeSlackPermanent, true},
			{"rate limited", slackfake.Failure{Status: 429, RetryAfter: 3}, activities.ErrTypeSlackRetryable, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv := slackfake.New(t)
				srv.FailNext("chat.postMessage", tt.failure)
				a := &activities.CapacityMaintenance{Store: watchStore(), Slack: slacknotify.New(slacknotify.Config{APIURL: srv.APIURL()})}
				_, err := a.PostCapacitySummary(context.Background(), &activities.PostSummaryInput{Channel: summaryChannel, At: at})
				var appErr *temporal.ApplicationError
				require.True(t, errors.As(err, &appErr))
				require.Equal(t, tt.errType, appErr.Type())
				require.Equal(t, tt.nonRetryable, appErr.NonRetryable())
			})
		}
	})
}

// watchStore is the capacity watch store on the test database.
func watchStore() *watch.Store { return &watch.Store{DB: db} }
