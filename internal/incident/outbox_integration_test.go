//go:build integration

package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/metrics"
)

func TestBacklog(t *testing.T) {
	ctx := context.Background()
	store := &incident.Store{DB: db}

	got, err := store.Backlog(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "an empty outbox has no backlog")

	incidentID := uuid.NewString()
	_, err = db.ExecContext(ctx, `
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, status, opened_at, last_alert_at)
		VALUES ($1, $2, $3, 'CARDIAC_ARREST', 'CRITICAL', 'P001', 'ICU-3', 'OPEN', now(), now())`,
		incidentID, "incident:"+incidentID, incidentID)
	require.NoError(t, err)
	rows := []struct {
		step, recipient, channel, status string
		age                              time.Duration
	}{
		{"assign", "n01", "sms", "pending", 10 * time.Minute},
		{"escalate-1", "n01", "sms", "pending", time.Minute},
		{"escalate-1", "n02", "sms", "sent", time.Hour},
		{"assign", "n01", "inapp", "sent", time.Hour},
		{"assign", "n02", "sms", "failed", 2 * time.Hour},
		{"assign", "n03", "sms", "skipped", 2 * time.Hour},
	}
	for _, r := range rows {
		_, err := db.ExecContext(ctx, `
			INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, created_at)
			VALUES ($1, $2, $3, $4, $5, now() - make_interval(secs => $6))`,
			incidentID, r.step, r.recipient, r.channel, r.status, r.age.Seconds())
		require.NoError(t, err)
	}

	got, err = store.Backlog(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1, "only pending rows count: %v", got)
	require.Equal(t, "sms", got[0].Channel)
	require.Equal(t, 2, got[0].Pending)
	require.InDelta(t, (10 * time.Minute).Seconds(), got[0].OldestAge.Seconds(), 5)

	// Through the scrape-time collector.
	reg := metrics.New()
	require.NoError(t, reg.RegisterState(metrics.StateSources{Outbox: store.Backlog}))
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	values := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "vigil_outbox_pending" {
			continue
		}
		for _, m := range f.GetMetric() {
			values[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"sms": 2, "inapp": 0, "slack": 0}, values)
}

func TestPageOutcomes_ListsEachPageWithItsOutcome(t *testing.T) {
	ctx := context.Background()
	store := &incident.Store{DB: db}
	incidentID := uuid.NewString()
	_, err := db.ExecContext(ctx, `
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, status, opened_at, last_alert_at)
		VALUES ($1, $2, $3, 'CARDIAC_ARREST', 'CRITICAL', 'P001', 'ICU-3', 'OPEN', now(), now())`,
		incidentID, "incident:"+incidentID, incidentID)
	require.NoError(t, err)

	got, err := store.PageOutcomes(ctx, incidentID)
	require.NoError(t, err)
	require.Empty(t, got, "no pages yet")

	long := strings.Repeat("x", 500)
	rows := []struct {
		step, recipient, channel, status, lastError string
		sent                                        bool
	}{
		{"assign", "page-test-nobody", "inapp", "sent", "", true},
		{"assign", "page-test-nobody", "sms", "failed", long, false},
		{"escalate-1", "page-test-nobody", "slack", "pending", "slack: 503", false},
	}
	for _, r := range rows {
		_, err := db.ExecContext(ctx, `
			INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, attempts, last_error, sent_at)
			VALUES ($1, $2, $3, $4, $5, 1, $6, CASE WHEN $7 THEN now() END)`,
			incidentID, r.step, r.recipient, r.channel, r.status, r.lastError, r.sent)
		require.NoError(t, err)
	}

	got, err = store.PageOutcomes(ctx, incidentID)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, r := range rows {
		require.Equal(t, r.step, got[i].Step)
		require.Equal(t, r.channel, got[i].Channel)
		require.Equal(t, r.status, got[i].Status)
		require.Nil(t, got[i].RecipientName, "no staff member by that id")
		require.Equal(t, r.sent, got[i].SentAt != nil)
	}
	require.Len(t, []rune(got[1].LastError), 201, "a long provider error is cut")
	require.Equal(t, "slack: 503", got[2].LastError)

	// WasPaged: a sent page on any channel counts; a failed or pending one
	// does not.
	for staff, want := range map[string]bool{"page-test-nobody": true, "page-test-other": false} {
		paged, err := store.WasPaged(ctx, incidentID, staff)
		require.NoError(t, err)
		require.Equal(t, want, paged, staff)
	}
	_, err = db.ExecContext(ctx, `DELETE FROM notification_outbox WHERE incident_id = $1 AND status = 'sent'`, incidentID)
	require.NoError(t, err)
	paged, err := store.WasPaged(ctx, incidentID, "page-test-nobody")
	require.NoError(t, err)
	require.False(t, paged, "only failed and pending pages are left")
}
