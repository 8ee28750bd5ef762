package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// NotificationLockClass is the first key of the advisory lock (the second is
// hashtext(staff_id)) that PageInApp takes before it inserts a staff
// notification and holds until it commits: a staff member's notification
// ids are then drawn in commit order, so a stream that has sent id n has
// seen every smaller one and resuming after n misses nothing.
const NotificationLockClass = 1297303380

// NotificationChannel is the Postgres NOTIFY channel a page announces itself
// on, with the recipient's staff id as payload.
const NotificationChannel = "staff_notifications"

// OutboxKey is the unique key of a notification_outbox row: one page, to
// one person, by one channel.
type OutboxKey struct {
	IncidentID string
	Step       string
	Recipient  string
	Channel    string
}

// OutboxRow is an outbox row as a claim finds it.
type OutboxRow struct {
	ID          int64      `db:"id"`
	Status      string     `db:"status"`
	ProviderRef string     `db:"provider_ref"`
	LastError   string     `db:"last_error"`
	SentAt      *time.Time `db:"sent_at"`
}

// claimOutbox inserts the row of key, or finds it, and locks it until tx
// ends (ON CONFLICT DO UPDATE locks the row). due, when set, is written on
// insert only: a retry keeps the first attempt's.
func claimOutbox(ctx context.Context, tx *sqlx.Tx, key OutboxKey, due *time.Time) (OutboxRow, error) {
	var row OutboxRow
	err := tx.GetContext(ctx, &row, `
		INSERT INTO notification_outbox (incident_id, step, recipient, channel, due_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (incident_id, step, recipient, channel) DO UPDATE SET attempts = notification_outbox.attempts
		RETURNING id, status, provider_ref, last_error, sent_at`, key.IncidentID, key.Step, key.Recipient, key.Channel, due)
	if err != nil {
		return row, fmt.Errorf("claim %s outbox row: %w", key.Channel, err)
	}
	return row, nil
}

// InAppPage is one in-app page to one person.
type InAppPage struct {
	IncidentID string
	Step       string
	Recipient  string
	Kind       string
	Title      string
	Body       string
	// Due is when a timer-scheduled page was due; nil for pages sent at once.
	Due *time.Time
	// SMSSkipped, when set, records in the same transaction that the page
	// went by no SMS, for this reason.
	SMSSkipped string
}

// PageInApp delivers a page through the outbox in one transaction: it
// claims the in-app outbox row, and unless an earlier attempt already sent
// it, announces it on NotificationChannel (delivered at commit), records an
// SMS skipped when asked to, and stores the staff notification under the
// recipient's notification lock. It returns when the page was sent, and
// whether an earlier attempt sent it (then this call changed nothing).
func (s *Store) PageInApp(ctx context.Context, p InAppPage) (sentAt time.Time, sentBefore bool, err error) {
	sent, err := s.PageInApps(ctx, []InAppPage{p})
	if err != nil {
		return time.Time{}, false, err
	}
	return sent[0].At, sent[0].Before, nil
}

// PageSent is when a page was sent, and whether an earlier attempt sent it.
type PageSent struct {
	At     time.Time
	Before bool
}

// PageInApps is PageInApp for several pages in one transaction (the
// escalation dispatcher's steps due at once): each recipient's notification
// lock is taken once, in recipient order, and held until the one commit,
// so pages to one person cost one commit together rather than one each.
// The result is in the order of pages.
func (s *Store) PageInApps(ctx context.Context, pages []InAppPage) ([]PageSent, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	sent, err := pageInApps(ctx, tx, pages)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit page: %w", err)
	}
	return sent, nil
}

// pageInApps is PageInApps inside tx.
func pageInApps(ctx context.Context, tx *sqlx.Tx, pages []InAppPage) ([]PageSent, error) {
	sent := make([]PageSent, len(pages))
	outboxIDs := make([]int64, len(pages))
	byRecipient := map[string][]int{} // the pages not sent before
	for i, p := range pages {
		row, err := claimOutbox(ctx, tx, OutboxKey{IncidentID: p.IncidentID, Step: p.Step, Recipient: p.Recipient, Channel: "inapp"}, p.Due)
		if err != nil {
			return nil, err
		}
		if row.Status == "sent" && row.SentAt != nil {
			sent[i] = PageSent{At: *row.SentAt, Before: true}
			continue
		}
		if slices.Contains(outboxIDs[:i], row.ID) {
			return nil, fmt.Errorf("page %s of %s to %s is in the batch twice", p.Step, p.IncidentID, p.Recipient)
		}
		outboxIDs[i] = row.ID
		byRecipient[p.Recipient] = append(byRecipient[p.Recipient], i)
	}
	recipients := slices.Sorted(maps.Keys(byRecipient))
	// Everything that needs no lock comes first (pg_notify is delivered at
	// commit): the recipients' locks are held for their statements and the
	// commit, as pages to one person are serialised by them.
	for _, r := range recipients {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify('staff_notifications', $1)`, r); err != nil {
			return nil, fmt.Errorf("notify listeners: %w", err)
		}
		for _, i := range byRecipient[r] {
			p := pages[i]
			if p.SMSSkipped == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, last_error)
				VALUES ($1, $2, $3, 'sms', 'skipped', $4)
				ON CONFLICT (incident_id, step, recipient, channel) DO NOTHING`,
				p.IncidentID, p.Step, p.Recipient, p.SMSSkipped); err != nil {
				return nil, fmt.Errorf("record sms skipped: %w", err)
			}
		}
	}
	// Each recipient's notification lock, held until commit, makes their
	// notification ids commit in order: a stream resuming after an id misses
	// none. Taken in recipient order, so two batches never wait on each
	// other in a circle.
	for _, r := range recipients {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, NotificationLockClass, r); err != nil {
			return nil, fmt.Errorf("lock recipient notifications: %w", err)
		}
		for _, i := range byRecipient[r] {
			p := pages[i]
			if err := tx.QueryRowxContext(ctx, `
				WITH n AS (
					INSERT INTO staff_notifications (staff_id, incident_id, outbox_id, kind, title, body)
					VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (outbox_id) DO NOTHING
					RETURNING id, created_at
				)
				UPDATE notification_outbox SET status = 'sent', attempts = attempts + 1, sent_at = now()
				WHERE id = $3
				RETURNING sent_at`, p.Recipient, p.IncidentID, outboxIDs[i], p.Kind, p.Title, p.Body).Scan(&sent[i].At); err != nil {
				return nil, fmt.Errorf("deliver in-app page: %w", err)
			}
		}
	}
	return sent, nil
}

// SMSClaim is an SMS outbox row claimed and locked by an open transaction,
// so concurrent attempts cannot both send. Exactly one of MarkSent, Settle
// and CountAttempt commits it; Close rolls back whatever was not committed.
type SMSClaim struct {
	tx *sqlx.Tx
	// Row is the outbox row as claimed: a settled status (sent, skipped,
	// failed) is the outcome of an earlier attempt.
	Row OutboxRow
}

// ClaimSMS claims the SMS outbox row of (incident, step, recipient) in a
// new transaction.
func (s *Store) ClaimSMS(ctx context.Context, incidentID, step, recipient string) (*SMSClaim, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	row, err := claimOutbox(ctx, tx, OutboxKey{IncidentID: incidentID, Step: step, Recipient: recipient, Channel: "sms"}, nil)
	if err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return &SMSClaim{tx: tx, Row: row}, nil
}

// Close rolls the claim's transaction back if it was not committed.
func (c *SMSClaim) Close() { _ = c.tx.Rollback() }

// RecipientPhone reads the staff member's phone number in the claim's
// transaction; found is false for an unknown staff member.
func (c *SMSClaim) RecipientPhone(ctx context.Context, staffID string) (phone string, found bool, err error) {
	err = c.tx.GetContext(ctx, &phone, `SELECT phone FROM staff WHERE id = $1`, staffID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up phone of %s: %w", staffID, err)
	}
	return phone, true, nil
}

// MarkSent records the provider's message id, marks the row sent and
// commits; it returns when the row was marked sent.
func (c *SMSClaim) MarkSent(ctx context.Context, providerRef string) (time.Time, error) {
	var sentAt time.Time
	if err := c.tx.GetContext(ctx, &sentAt, `
		UPDATE notification_outbox
		SET status = 'sent', attempts = attempts + 1, provider_ref = $2, last_error = '', sent_at = now()
		WHERE id = $1 RETURNING sent_at`, c.Row.ID, providerRef); err != nil {
		return time.Time{}, fmt.Errorf("mark sms sent: %w", err)
	}
	if err := c.tx.Commit(); err != nil {
		return time.Time{}, fmt.Errorf("commit sms: %w", err)
	}
	return sentAt, nil
}

// Settle marks the row skipped or failed (a failure counts as an attempt)
// with the reason, and commits.
func (c *SMSClaim) Settle(ctx context.Context, status, providerRef, reason string) error {
	attempt := 0
	if status == "failed" {
		attempt = 1
	}
	if _, err := c.tx.ExecContext(ctx, `
		UPDATE notification_outbox SET status = $2, provider_ref = $3, last_error = $4, attempts = attempts + $5
		WHERE id = $1`, c.Row.ID, status, providerRef, reason, attempt); err != nil {
		return fmt.Errorf("mark sms %s: %w", status, err)
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("commit sms %s: %w", status, err)
	}
	return nil
}

// CountAttempt counts a failed attempt that will be retried, keeping the
// row pending with the error, and commits.
func (c *SMSClaim) CountAttempt(ctx context.Context, lastError string) error {
	if _, err := c.tx.ExecContext(ctx, `
		UPDATE notification_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1`,
		c.Row.ID, lastError); err != nil {
		return fmt.Errorf("record sms attempt: %w", err)
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("commit sms attempt: %w", err)
	}
	return nil
}
