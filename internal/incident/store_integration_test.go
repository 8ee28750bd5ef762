//go:build integration

package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident"
)

// TestPageInAppAndNotifications pages a demo staff member through the
// outbox and reads, pages and marks their notifications.
func TestPageInAppAndNotifications(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	id := insert(t, row{Opened: base})[0]
	const staff = "N01"

	first, sentBefore, err := store().PageInApp(ctx, incident.InAppPage{IncidentID: id, Step: "assign", Recipient: staff,
		Kind: "assigned", Title: "t1", Body: "b1", SMSSkipped: "SMS is not configured"})
	require.NoError(t, err)
	require.False(t, sentBefore)
	again, sentBefore, err := store().PageInApp(ctx, incident.InAppPage{IncidentID: id, Step: "assign", Recipient: staff,
		Kind: "assigned", Title: "t1", Body: "b1"})
	require.NoError(t, err)
	require.True(t, sentBefore, "a retried page is sent once")
	require.True(t, first.Equal(again))
	_, _, err = store().PageInApp(ctx, incident.InAppPage{IncidentID: id, Step: "escalation-1", Recipient: staff,
		Kind: "escalated", Title: "t2", Body: "b2"})
	require.NoError(t, err)

	recipient, found, err := store().StepRecipient(ctx, id, "assign")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, staff, recipient)
	_, found, err = store().StepRecipient(ctx, id, "reminder-1")
	require.NoError(t, err)
	require.False(t, found)

	all, err := store().ListNotifications(ctx, incident.NotificationFilter{StaffID: staff, Limit: 50})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), 2)
	newest := all[0]
	require.Equal(t, "t2", newest.Title, "newest first")

	tests := []struct {
		name  string
		after int64
		only  bool
		want  []string
	}{
		{"after the first", all[1].ID, false, []string{"t2"}},
		{"after the newest", newest.ID, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store().NotificationsAfter(ctx, staff, tt.after, tt.only, 10)
			require.NoError(t, err)
			var titles []string
			for _, n := range got {
				titles = append(titles, n.Title)
			}
			require.Equal(t, tt.want, titles)
		})
	}

	found, err = store().MarkNotificationRead(ctx, staff, newest.ID)
	require.NoError(t, err)
	require.True(t, found)
	found, err = store().MarkNotificationRead(ctx, "N02", newest.ID)
	require.NoError(t, err)
	require.False(t, found, "another staff member's notification")
	unread, err := store().ListNotifications(ctx, incident.NotificationFilter{StaffID: staff, UnreadOnly: true, Limit: 50})
	require.NoError(t, err)
	require.NotContains(t, unread, newest)
	n, err := store().MarkAllNotificationsRead(ctx, staff)
	require.NoError(t, err)
	require.Equal(t, int64(len(unread)), n)
}

// TestIncidentLookups finds an incident's workflow and open incidents by
// their key hash.
func TestIncidentLookups(t *testing.T) {
	ctx := context.Background()
	id := insert(t, row{Opened: time.Date(2031, 2, 1, 0, 0, 0, 0, time.UTC)})[0]

	wf, status, err := store().Workflow(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusOpen, status)
	require.Contains(t, wf, "incident:")
	_, _, err = store().Workflow(ctx, "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, incident.ErrNotFound)

	_, found, err := store().OldestOpenByKeyHash(ctx, "no-such-hash")
	require.NoError(t, err)
	require.False(t, found)
	_, found, err = store().OldestOpenOfOtherIntegration(ctx, "no-such-hash", "")
	require.NoError(t, err)
	require.False(t, found)
}
