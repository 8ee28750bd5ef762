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
	"github.com/lib/pq"
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

// pageInApps is PageInApps inside tx, in a few statements whatever the
// number of pages: the outbox rows are claimed together, then each
// recipient's notifications are written together under their lock.
func pageInApps(ctx context.Context, tx *sqlx.Tx, pages []InAppPage) ([]PageSent, error) {
	sent := make([]PageSent, len(pages))
	if len(pages) == 0 {
		return sent, nil
	}
	n := len(pages)
	incidents, steps, recipients, dues := make([]string, n), make([]string, n), make([]string, n), make([]sql.NullTime, n)
	seen := make(map[OutboxKey]bool, n)
	for i, p := range pages {
		key := OutboxKey{IncidentID: p.IncidentID, Step: p.Step, Recipient: p.Recipient, Channel: "inapp"}
		if seen[key] {
			return nil, fmt.Errorf("page %s of %s to %s is in the batch twice", p.Step, p.IncidentID, p.Recipient)
		}
		seen[key] = true
		incidents[i], steps[i], recipients[i] = p.IncidentID, p.Step, p.Recipient
		if p.Due != nil {
			dues[i] = sql.NullTime{Time: *p.Due, Valid: true}
		}
	}
	// Claim (insert, or find and lock) every page's outbox row; due_at is
	// written on insert only, so a retry keeps the first attempt's.
	var claimed []struct {
		N int `db:"n"`
		OutboxRow
	}
	if err := tx.SelectContext(ctx, &claimed, `
		WITH u AS (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS u (incident_id, step, recipient, due_at, n)
		), o AS (
			INSERT INTO notification_outbox (incident_id, step, recipient, channel, due_at)
			SELECT incident_id, step, recipient, 'inapp', due_at FROM u ORDER BY incident_id, step, recipient
			ON CONFLICT (incident_id, step, recipient, channel) DO UPDATE SET attempts = notification_outbox.attempts
			RETURNING id, incident_id, step, recipient, status, provider_ref, last_error, sent_at
		)
		SELECT u.n, o.id, o.status, o.provider_ref, o.last_error, o.sent_at
		FROM o JOIN u ON o.incident_id = u.incident_id AND o.step = u.step AND o.recipient = u.recipient`,
		pq.Array(incidents), pq.Array(steps), pq.Array(recipients), pq.Array(dues)); err != nil {
		return nil, fmt.Errorf("claim inapp outbox rows: %w", err)
	}
	if len(claimed) != n {
		return nil, fmt.Errorf("claimed %d inapp outbox rows for %d pages", len(claimed), n)
	}
	outboxIDs := make([]int64, n)
	byRecipient := map[string][]int{} // the pages not sent before
	var skipped []int
	for _, c := range claimed {
		i := c.N - 1
		if c.Status == "sent" && c.SentAt != nil {
			sent[i] = PageSent{At: *c.SentAt, Before: true}
			continue
		}
		outboxIDs[i] = c.ID
		byRecipient[pages[i].Recipient] = append(byRecipient[pages[i].Recipient], i)
		if pages[i].SMSSkipped != "" {
			skipped = append(skipped, i)
		}
	}
	if len(byRecipient) == 0 {
		return sent, nil
	}
	to := slices.Sorted(maps.Keys(byRecipient))
	// Everything that needs no lock comes first (pg_notify is delivered at
	// commit): the recipients' locks are held for one statement each and
	// the commit, as pages to one person are serialised by them.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify('staff_notifications', r) FROM unnest($1::text[]) AS r`, pq.Array(to)); err != nil {
		return nil, fmt.Errorf("notify listeners: %w", err)
	}
	if len(skipped) > 0 {
		si, ss, sr, reason := make([]string, len(skipped)), make([]string, len(skipped)), make([]string, len(skipped)), make([]string, len(skipped))
		for j, i := range skipped {
			si[j], ss[j], sr[j], reason[j] = pages[i].IncidentID, pages[i].Step, pages[i].Recipient, pages[i].SMSSkipped
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, last_error)
			SELECT incident_id, step, recipient, 'sms', 'skipped', reason
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u (incident_id, step, recipient, reason)
			ORDER BY incident_id, step, recipient
			ON CONFLICT (incident_id, step, recipient, channel) DO NOTHING`,
			pq.Array(si), pq.Array(ss), pq.Array(sr), pq.Array(reason)); err != nil {
			return nil, fmt.Errorf("record sms skipped: %w", err)
		}
	}
	// Each recipient's notification lock, held until commit, makes their
	// notification ids commit in order: a stream resuming after an id misses
	// none. Taken in recipient order, so two transactions never wait on each
	// other in a circle.
	for _, r := range to {
		idx := byRecipient[r]
		ids, incs, kinds, titles, bodies := make([]int64, len(idx)), make([]string, len(idx)), make([]string, len(idx)), make([]string, len(idx)), make([]string, len(idx))
		for j, i := range idx {
			ids[j], incs[j], kinds[j], titles[j], bodies[j] = outboxIDs[i], pages[i].IncidentID, pages[i].Kind, pages[i].Title, pages[i].Body
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, NotificationLockClass, r); err != nil {
			return nil, fmt.Errorf("lock recipient notifications: %w", err)
		}
		var rows []struct {
			ID     int64     `db:"id"`
			SentAt time.Time `db:"sent_at"`
		}
		if err := tx.SelectContext(ctx, &rows, `
			WITH u AS (
				SELECT * FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS u (outbox_id, incident_id, kind, title, body, n)
			), n AS (
				INSERT INTO staff_notifications (staff_id, incident_id, outbox_id, kind, title, body)
				SELECT $1, incident_id, outbox_id, kind, title, body FROM u ORDER BY n
				ON CONFLICT (outbox_id) DO NOTHING
				RETURNING id
			)
			UPDATE notification_outbox SET status = 'sent', attempts = attempts + 1, sent_at = clock_timestamp()
			WHERE id IN (SELECT outbox_id FROM u)
			RETURNING id, sent_at`, r, pq.Array(ids), pq.Array(incs), pq.Array(kinds), pq.Array(titles), pq.Array(bodies)); err != nil {
			return nil, fmt.Errorf("deliver in-app pages to %s: %w", r, err)
		}
		at := make(map[int64]time.Time, len(rows))
		for _, row := range rows {
			at[row.ID] = row.SentAt
		}
		for _, i := range idx {
			sent[i] = PageSent{At: at[outboxIDs[i]]}
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
