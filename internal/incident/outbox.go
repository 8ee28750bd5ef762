package incident

import (
	"context"
	"fmt"
	"time"

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
