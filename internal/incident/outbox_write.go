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

	"github.com/vigil-health/vigil/internal/database"
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

// InAppPage is one page to one person: what the incident workflow asks the
// Page activities to send, and what the outbox stores.
type InAppPage struct {
	IncidentID string
	// Step names the page within the incident ("assign", "escalation-1",
	// "reminder-2", ...); with the recipient and channel it is the outbox's
	// unique key, so a retried page is never sent twice.
	Step      string
	Recipient string
	Kind      string
	Title     string
	Body      string
	// Due is when a timer-scheduled page (an escalation step or a start
	// reminder) was due; zero for pages sent at once. It is stored with the
	// outbox row (due_at), so sent_at - due_at is how late the page went out.
	Due time.Time
	// SMSSkipped, when set, records in the same transaction that the page
	// went by no SMS, for this reason (SMS is not configured, so the
	// workflow schedules no SMS delivery).
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
	var sent []PageSent
	err := database.InTx(ctx, s.DB, func(tx *sqlx.Tx) (err error) {
		sent, err = pageInApps(ctx, tx, pages)
		return err
	})
	if err != nil {
		return nil, err
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
		dues[i] = sql.NullTime{Time: p.Due, Valid: !p.Due.IsZero()}
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

// SMSClaim is an SMS outbox row claimed and locked by an open transaction.
// Until StartSend, exactly one of MarkSent, Settle and CountAttempt commits
// it and Close rolls back whatever was not committed. StartSend commits the
// claim with a send lease before the provider is called, so the row is not
// locked during the call; the outcome is then recorded on the row by the
// same methods.
type SMSClaim struct {
	db *sqlx.DB
	tx *sqlx.Tx
	// Row is the outbox row as claimed: a settled status (sent, skipped,
	// failed) is the outcome of an earlier attempt.
	Row OutboxRow
	// InDoubtSince, when set, is when an earlier attempt began a send whose
	// outcome is unknown: it died inside the provider call, or the call
	// ended without an answer. The message may have gone out since then, so
	// the provider's log is read before sending again.
	InDoubtSince *time.Time
	// LeaseLeft, when positive, is how long another attempt's send lease
	// still runs: that attempt may be calling the provider right now.
	LeaseLeft time.Duration
	// sending is set once StartSend committed the claim.
	sending bool
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
	var send struct {
		StartedAt *time.Time `db:"send_started_at"`
		LeaseLeft *float64   `db:"lease_left"`
	}
	if err := tx.GetContext(ctx, &send, `
		SELECT send_started_at, EXTRACT(EPOCH FROM send_lease_until - clock_timestamp())::float8 AS lease_left
		FROM notification_outbox WHERE id = $1`, row.ID); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("read sms send state: %w", err)
	}
	c := &SMSClaim{db: s.DB, tx: tx, Row: row, InDoubtSince: send.StartedAt}
	if send.LeaseLeft != nil && *send.LeaseLeft > 0 {
		c.LeaseLeft = time.Duration(*send.LeaseLeft * float64(time.Second))
	}
	return c, nil
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

// StartSend records that a send begins, leased until leaseUntil (when the
// attempt is given up), and commits the claim: the provider is called
// without the row locked. The first unanswered send's start is kept, so a
// later attempt knows since when the message may be in the provider's log.
func (c *SMSClaim) StartSend(ctx context.Context, leaseUntil time.Time) error {
	if _, err := c.tx.ExecContext(ctx, `
		UPDATE notification_outbox
		SET send_started_at = COALESCE(send_started_at, clock_timestamp()), send_lease_until = $2
		WHERE id = $1`, c.Row.ID, leaseUntil); err != nil {
		return fmt.Errorf("start sms send: %w", err)
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("commit sms send start: %w", err)
	}
	c.sending = true
	return nil
}

// UnrecordedRef returns the first of refs (provider message ids, best
// first) that no SMS outbox row of recipient has recorded yet, or "" when
// every one is already another page's message.
func (c *SMSClaim) UnrecordedRef(ctx context.Context, recipient string, refs []string) (string, error) {
	if len(refs) == 0 {
		return "", nil
	}
	var ref []string
	if err := c.db.SelectContext(ctx, &ref, `
		SELECT u.ref FROM unnest($2::text[]) WITH ORDINALITY AS u (ref, n)
		WHERE NOT EXISTS (
			SELECT 1 FROM notification_outbox o
			WHERE o.recipient = $1 AND o.channel = 'sms' AND o.provider_ref = u.ref)
		ORDER BY u.n LIMIT 1`, recipient, pq.Array(refs)); err != nil {
		return "", fmt.Errorf("match sms provider refs: %w", err)
	}
	if len(ref) == 0 {
		return "", nil
	}
	return ref[0], nil
}

// exec runs a statement that records an outcome: in the claim's
// transaction, committed, before StartSend; on the row itself after it.
func (c *SMSClaim) exec(ctx context.Context, what string, dest any, query string, args ...any) error {
	var err error
	switch {
	case c.sending && dest != nil:
		err = c.db.GetContext(ctx, dest, query, args...)
	case c.sending:
		_, err = c.db.ExecContext(ctx, query, args...)
	case dest != nil:
		err = c.tx.GetContext(ctx, dest, query, args...)
	default:
		_, err = c.tx.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !c.sending {
		if err := c.tx.Commit(); err != nil {
			return fmt.Errorf("commit %s: %w", what, err)
		}
	}
	return nil
}

// MarkSent records the provider's message id, marks the row sent and
// commits; it returns when the row was marked sent.
func (c *SMSClaim) MarkSent(ctx context.Context, providerRef string) (time.Time, error) {
	var sentAt time.Time
	err := c.exec(ctx, "mark sms sent", &sentAt, `
		UPDATE notification_outbox
		SET status = 'sent', attempts = attempts + 1, provider_ref = $2, last_error = '', sent_at = now(),
			send_started_at = NULL, send_lease_until = NULL
		WHERE id = $1 RETURNING sent_at`, c.Row.ID, providerRef)
	return sentAt, err
}

// Settle marks the row skipped or failed (a failure counts as an attempt)
// with the reason, and commits.
func (c *SMSClaim) Settle(ctx context.Context, status, providerRef, reason string) error {
	attempt := 0
	if status == "failed" {
		attempt = 1
	}
	return c.exec(ctx, "mark sms "+status, nil, `
		UPDATE notification_outbox SET status = $2, provider_ref = $3, last_error = $4, attempts = attempts + $5,
			send_started_at = NULL, send_lease_until = NULL
		WHERE id = $1`, c.Row.ID, status, providerRef, reason, attempt)
}

// CountAttempt counts a failed attempt that will be retried, keeping the
// row pending with the error, and commits. answered says the provider
// answered that it did not take the message; otherwise (no answer, or an
// unreadable one) the send stays in doubt and the next attempt reads the
// provider's log first.
func (c *SMSClaim) CountAttempt(ctx context.Context, lastError string, answered bool) error {
	return c.exec(ctx, "record sms attempt", nil, `
		UPDATE notification_outbox SET attempts = attempts + 1, last_error = $2, send_lease_until = NULL,
			send_started_at = CASE WHEN $3 THEN NULL ELSE send_started_at END
		WHERE id = $1`, c.Row.ID, lastError, answered)
}
