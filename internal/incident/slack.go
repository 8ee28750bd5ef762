package incident

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ReserveSlackMessage inserts the incident's incident_slack_messages row
// with an empty timestamp, committed before anything is posted; reserved
// is false when the row was already there (an earlier attempt made it).
func (s *Store) ReserveSlackMessage(ctx context.Context, incidentID, channel string) (reserved bool, err error) {
	res, err := s.DB.ExecContext(ctx, `
		INSERT INTO incident_slack_messages (incident_id, channel, ts) VALUES ($1, $2, '')
		ON CONFLICT (incident_id) DO NOTHING`, incidentID, channel)
	if err != nil {
		return false, fmt.Errorf("reserve slack message of incident %s: %w", incidentID, err)
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reserve slack message of incident %s: %w", incidentID, err)
	}
	return affected == 1, nil
}

// SlackMessageLock is an incident's Slack message row, locked (FOR UPDATE)
// by an open transaction so concurrent attempts take turns. Store commits
// it; Close rolls back whatever was not committed.
type SlackMessageLock struct {
	tx         *sqlx.Tx
	incidentID string
	// Channel and TS locate the message in Slack; TS is empty while the
	// message has not been posted (or its timestamp was never stored).
	Channel string
	TS      string
	// LastSeq is the audit sequence number of the state last shown.
	LastSeq int
}

// LockSlackMessage locks the incident's reserved Slack message row in a new
// transaction.
func (s *Store) LockSlackMessage(ctx context.Context, incidentID string) (*SlackMessageLock, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	l := &SlackMessageLock{tx: tx, incidentID: incidentID}
	if err := tx.QueryRowxContext(ctx, `
		SELECT channel, ts, last_seq FROM incident_slack_messages WHERE incident_id = $1 FOR UPDATE`, incidentID).
		Scan(&l.Channel, &l.TS, &l.LastSeq); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("lock slack message of incident %s: %w", incidentID, err)
	}
	return l, nil
}

// Close rolls the lock's transaction back if it was not committed.
func (l *SlackMessageLock) Close() { _ = l.tx.Rollback() }

// Store records the message's channel and timestamp and the state shown
// (seq, kept when older), and commits.
func (l *SlackMessageLock) Store(ctx context.Context, channel, ts string, seq int) error {
	if _, err := l.tx.ExecContext(ctx, `
		UPDATE incident_slack_messages
		SET channel = $2, ts = $3, last_seq = GREATEST(last_seq, $4), updated_at = now()
		WHERE incident_id = $1`, l.incidentID, channel, ts, seq); err != nil {
		return fmt.Errorf("store slack message of incident %s: %w", l.incidentID, err)
	}
	if err := l.tx.Commit(); err != nil {
		return fmt.Errorf("commit slack message of incident %s: %w", l.incidentID, err)
	}
	return nil
}
