//go:build integration

package watch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

func TestCreateStoresOnlyWhenStarted(t *testing.T) {
	ctx := context.Background()
	refused := errors.New("workflow not started")
	tests := []struct {
		name     string
		w        watch.Watch
		startErr error
		stored   bool
	}{
		{"service watch", watch.Watch{Config: watch.Config{Kind: watch.KindService, ServiceID: "2000001", Interval: 5 * time.Minute, RecoveryPolls: 1, SMSNumbers: []string{}}}, nil, true},
		{"search watch", watch.Watch{Config: watch.Config{Kind: watch.KindSearch, Search: directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 10,
			ServiceTypes: []string{"40"}, ResultsLimit: 10, Role: "CAPMON"}, Interval: time.Minute, RecoveryPolls: 2,
			SMSNumbers: []string{"+447700900001"}}}, nil, true},
		{"start fails", watch.Watch{Config: watch.Config{Kind: watch.KindService, ServiceID: "2000002", Interval: time.Minute, RecoveryPolls: 1}}, refused, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.ID, tt.w.CreatedBy, tt.w.Description = uuid.NewString(), "staff-1", tt.name
			err := store().Create(ctx, tt.w, func() error { return tt.startErr })
			require.ErrorIs(t, err, tt.startErr)
			got, err := store().Get(ctx, tt.w.ID)
			if !tt.stored {
				require.ErrorIs(t, err, watch.ErrNotFound)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "active", got.State)
			got.State, got.CreatedAt, got.UpdatedAt = "", time.Time{}, time.Time{}
			require.Equal(t, tt.w, got)
		})
	}
}

func TestUpdateCommitsOnlyWhenApplied(t *testing.T) {
	ctx := context.Background()
	w := watch.Watch{ID: uuid.NewString(), Config: watch.Config{Kind: watch.KindService, ServiceID: "2000001", Interval: time.Minute, RecoveryPolls: 1}}
	require.NoError(t, store().Create(ctx, w, func() error { return nil }))
	refused := errors.New("refused")
	tests := []struct {
		name      string
		changeErr error
		applyErr  error
		want      string
	}{
		{"change refused", refused, nil, ""},
		{"apply refused", nil, refused, ""},
		{"applied", nil, nil, "C0WATCH01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := store().Update(ctx, w.ID, func(current watch.Watch) (watch.Watch, error) {
				current.SlackChannel = "C0WATCH01"
				return current, tt.changeErr
			}, func(watch.Watch) error { return tt.applyErr })
			if tt.changeErr != nil || tt.applyErr != nil {
				require.ErrorIs(t, err, refused)
			} else {
				require.NoError(t, err)
			}
			got, err := store().Get(ctx, w.ID)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.SlackChannel)
		})
	}
}

func TestStateAndDeletion(t *testing.T) {
	ctx := context.Background()
	w := watch.Watch{ID: uuid.NewString(), Config: watch.Config{Kind: watch.KindService, ServiceID: "2000001", Interval: time.Minute, RecoveryPolls: 1}}
	require.NoError(t, store().Create(ctx, w, func() error { return nil }))
	require.NoError(t, store().SetState(ctx, w.ID, "paused", "staff-2"))
	got, err := store().Get(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, "paused", got.State)
	require.Equal(t, "staff-2", got.StateChangedBy)
	require.NotNil(t, got.StateChangedAt)

	require.NoError(t, store().MarkDeleted(ctx, w.ID))
	_, err = store().Get(ctx, w.ID)
	require.ErrorIs(t, err, watch.ErrNotFound)
	all, err := store().List(ctx, 200, 0)
	require.NoError(t, err)
	for _, l := range all {
		require.NotEqual(t, w.ID, l.ID, "a deleted watch is not listed")
	}
}

func TestRecordChangesOnceAndNotifiedTargets(t *testing.T) {
	ctx := context.Background()
	w := watch.Watch{ID: uuid.NewString(), Config: watch.Config{Kind: watch.KindService, ServiceID: "7000001", Interval: time.Minute, RecoveryPolls: 1}}
	require.NoError(t, store().Create(ctx, w, func() error { return nil }))
	polled := time.Date(2026, 7, 17, 9, 0, 0, 0, time.UTC)
	pollID := uuid.NewString()
	require.NoError(t, store().StoreSnapshot(ctx, w.ID, pollID, polled, []directory.Service{
		{ID: "7000001", Name: "Leeds ED", Postcode: "LS1 3EX", Easting: 429000, Northing: 434000, Capacity: "LOW", RAG: "AMBER"},
	}))
	first, err := store().RecordPoll(ctx, watch.Poll{PollID: pollID, WatchID: w.ID, ScheduledAt: polled, PolledAt: polled, Services: 1})
	require.NoError(t, err)
	require.True(t, first)
	again, err := store().RecordPoll(ctx, watch.Poll{PollID: pollID, WatchID: w.ID, ScheduledAt: polled, PolledAt: polled, Services: 1})
	require.NoError(t, err)
	require.False(t, again, "a retried poll is recorded once")

	c := watch.Change{Kind: watch.ChangeStatus, ServiceID: "7000001", Name: "Leeds ED", Previous: "HIGH", Capacity: "LOW", RAG: "AMBER"}
	outcome := watch.PollOutcome{WatchID: w.ID, PollID: pollID, At: polled, Changes: []watch.Change{c},
		Current: []watch.Observation{{ServiceStatus: watch.ServiceStatus{ServiceID: "7000001", Name: "Leeds ED", Capacity: "LOW", RAG: "AMBER"}}}, State: "degraded"}
	recorded, err := store().RecordChanges(ctx, outcome)
	require.NoError(t, err)
	require.Equal(t, []string{watch.ChangeStatus}, recorded)
	recorded, err = store().RecordChanges(ctx, outcome)
	require.NoError(t, err)
	require.Empty(t, recorded, "a replayed poll records nothing new")

	got, err := store().Get(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, "degraded", got.State)
	var postcode string
	require.NoError(t, db.Get(&postcode, `SELECT postcode FROM service_statuses WHERE service_id = '7000001'`))
	require.Equal(t, "LS1 3EX", postcode, "the status keeps the snapshot's position")

	key := watch.ChangeKey{PollID: pollID, ServiceID: "7000001", Kind: watch.ChangeStatus}
	_, err = store().NotifiedTargets(ctx, watch.ChangeKey{PollID: uuid.NewString(), ServiceID: "7000001", Kind: watch.ChangeStatus})
	require.ErrorIs(t, err, watch.ErrChangeNotRecorded)
	require.NoError(t, store().MarkTargetNotified(ctx, key, "slack:C0WATCH01"))
	require.NoError(t, store().MarkTargetNotified(ctx, key, "slack:C0WATCH01"))
	require.NoError(t, store().MarkNotified(ctx, key))
	targets, err := store().NotifiedTargets(ctx, key)
	require.NoError(t, err)
	require.Equal(t, []string{"slack:C0WATCH01"}, targets, "each target once")
}
