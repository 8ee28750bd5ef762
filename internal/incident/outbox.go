package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/metrics"
)

// Backlog returns, per channel that has any, the rows not sent yet (status
// pending: claimed but not delivered, such as an SMS waiting for the
// provider to come back) and the age of the oldest, measured by the
// database's clock. Settled rows (sent, failed, skipped) are not counted.
// It reads the partial index of pending rows, so it stays cheap however
// large the outbox grows.
func (s *Store) Backlog(ctx context.Context) ([]metrics.OutboxBacklog, error) {
	var rows []struct {
		Channel string  `db:"channel"`
		Pending int     `db:"pending"`
		Oldest  float64 `db:"oldest"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `
		SELECT channel, count(*) AS pending,
			COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest
		FROM notification_outbox
		WHERE status = 'pending'
		GROUP BY channel`); err != nil {
		return nil, fmt.Errorf("read outbox backlog: %w", err)
	}
	out := make([]metrics.OutboxBacklog, 0, len(rows))
	for _, r := range rows {
		out = append(out, metrics.OutboxBacklog{
			Channel: r.Channel, Pending: r.Pending,
			OldestAge: time.Duration(max(r.Oldest, 0) * float64(time.Second)),
		})
	}
	return out, nil
}

// PageOutcome is what became of one page of an incident: one recipient, at
// one step, on one channel (one notification_outbox row).
type PageOutcome struct {
	Step          string     `json:"step" db:"step"`
	Recipient     string     `json:"recipient" db:"recipient"`
	RecipientName *string    `json:"recipient_name" db:"recipient_name"`
	Channel       string     `json:"channel" db:"channel"`
	Status        string     `json:"status" db:"status"`
	Attempts      int        `json:"attempts" db:"attempts"`
	LastError     string     `json:"last_error" db:"last_error"`
	CreatedAt     time.Time  `json:"created_at" db:"created_at"`
	SentAt        *time.Time `json:"sent_at" db:"sent_at"`
}

// maxPageError bounds the provider error a page outcome carries.
const maxPageError = 200

// PageOutcomes lists an incident's pages, in the order they were queued.
func (s *Store) PageOutcomes(ctx context.Context, incidentID string) ([]PageOutcome, error) {
	out, err := database.Select[PageOutcome](ctx, s.DB, "load pages of incident "+incidentID, `
		SELECT o.step, o.recipient, st.name AS recipient_name, o.channel, o.status,
			o.attempts, o.last_error, o.created_at, o.sent_at
		FROM notification_outbox o
		LEFT JOIN staff st ON st.id = o.recipient
		WHERE o.incident_id = $1
		ORDER BY o.id`, incidentID)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
		if out[i].SentAt != nil {
			t := out[i].SentAt.UTC()
			out[i].SentAt = &t
		}
		if r := []rune(out[i].LastError); len(r) > maxPageError {
			out[i].LastError = string(r[:maxPageError]) + "…"
		}
	}
	return out, nil
}

// WasPaged reports whether staffID has been sent a page of the incident
// (an outbox row of theirs marked sent, on any channel).
func (s *Store) WasPaged(ctx context.Context, incidentID, staffID string) (bool, error) {
	var paged bool
	if err := s.DB.GetContext(ctx, &paged, `
		SELECT EXISTS (SELECT 1 FROM notification_outbox
			WHERE incident_id = $1 AND recipient = $2 AND status = 'sent')`, incidentID, staffID); err != nil {
		return false, fmt.Errorf("look up pages of incident %s: %w", incidentID, err)
	}
	return paged, nil
}
