package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/mail"
)

// Statuses of node_mail_recipients.status.
const (
	RecipientPending  = "pending"
	RecipientSent     = "sent"
	RecipientDeferred = "deferred"
	RecipientRefused  = "refused"
)

// MailRecipient is one node_mail_recipients row.
type MailRecipient struct {
	Position      int        `db:"position"`
	Address       string     `db:"address"`
	Field         string     `db:"field"`
	Status        string     `db:"status"`
	Code          *int       `db:"reply_code"`
	Reply         string     `db:"reply"`
	FirstDeferred *time.Time `db:"first_deferred_at"`
}

func (r MailRecipient) String() string {
	if r.Code == nil {
		return r.Address + ": " + r.Reply
	}
	return fmt.Sprintf("%s: %d %s", r.Address, *r.Code, r.Reply)
}

// MailLog is a node mail's row in node_mail_log.
type MailLog struct {
	ID         int64          `db:"id"`
	Status     string         `db:"status"`
	Recipients pq.StringArray `db:"recipients"`
	CC         pq.StringArray `db:"cc"`
}

// MailSettings returns what a node's e-mails need of its settings: its
// common name ("" when it has none) and its mail language ("de" by
// default).
func (s *Store) MailSettings(ctx context.Context, nodeID string) (name, language string, err error) {
	var st struct {
		Name     string `db:"common_name"`
		Language string `db:"mail_language"`
	}
	if err := s.DB.GetContext(ctx, &st, `SELECT COALESCE(max(common_name), '') AS common_name, COALESCE(max(mail_language), 'de') AS mail_language
		FROM node_settings WHERE node_id = $1`, nodeID); err != nil {
		return "", "", fmt.Errorf("read node settings: %w", err)
	}
	return st.Name, st.Language, nil
}

// OpenMail creates the row of the mail with in.Key in node_mail_log
// ('sending', in language), or finds the one an earlier attempt created,
// and returns it.
func (s *Store) OpenMail(ctx context.Context, in *MailRequest, language string) (MailLog, error) {
	var row MailLog
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO node_mail_log (key, node_id, condition, kind, status, language)
		VALUES ($1, $2, $3, $4, 'sending', $5) ON CONFLICT (key) DO NOTHING`,
		in.Key, in.NodeID, in.Condition, in.Kind, language); err != nil {
		return row, dataError(fmt.Errorf("record mail %s: %w", in.Key, err))
	}
	if err := s.DB.GetContext(ctx, &row, `SELECT id, status, recipients, cc FROM node_mail_log WHERE key = $1`, in.Key); err != nil {
		return row, fmt.Errorf("read mail %s: %w", in.Key, err)
	}
	return row, nil
}

// MailRecipients reads the mail's recipients in order.
func (s *Store) MailRecipients(ctx context.Context, mailID int64) ([]MailRecipient, error) {
	var out []MailRecipient
	if err := s.DB.SelectContext(ctx, &out, `SELECT position, address, field, status, reply_code, reply, first_deferred_at
		FROM node_mail_recipients WHERE mail_id = $1 ORDER BY position`, mailID); err != nil {
		return nil, fmt.Errorf("read mail recipients: %w", err)
	}
	return out, nil
}

// MarkMailNoRecipients records that the mail with key found nobody to mail;
// first is set when its row did not say so yet.
func (s *Store) MarkMailNoRecipients(ctx context.Context, key string) (first bool, err error) {
	res, err := s.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'no_recipients', recipients = '{}', error = ''
		WHERE key = $1 AND status <> 'no_recipients'`, key)
	if err != nil {
		return false, fmt.Errorf("record mail %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	return err != nil || n > 0, nil
}

// NodeRecipients are the node's mailed contacts: emergency-department main
// contacts and every IT contact, never unsubscribed ones, de-duplicated
// case-insensitively, in the order they were added.
func (s *Store) NodeRecipients(ctx context.Context, nodeID string) ([]string, error) {
	var emails []string
	if err := s.DB.SelectContext(ctx, &emails, `SELECT email FROM node_contacts
		WHERE node_id = $1 AND NOT unsubscribed AND (role = 'IT' OR (role = 'ED' AND main_contact))
		ORDER BY id`, nodeID); err != nil {
		return nil, fmt.Errorf("read node contacts: %w", err)
	}
	var out []string
	for _, e := range emails {
		e = strings.TrimSpace(e)
		if e != "" && !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, e) }) {
			out = append(out, e)
		}
	}
	return out, nil
}

// RecordMailRecipients fixes the mail's headers (To, Cc, subject,
// Message-ID, language) and its recipients, in one transaction. When a
// concurrent attempt recorded them first, the insert fails (retryably).
func (s *Store) RecordMailRecipients(ctx context.Context, mailID int64, lang string, to, cc []string, subject, msgID string, rcpts []MailRecipient) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record mail recipients: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE node_mail_log SET status = 'sending', language = $2, recipients = $3, cc = $4,
		subject = $5, message_id = $6 WHERE id = $1`, mailID, lang, pq.StringArray(to), pq.StringArray(cc), subject, msgID); err != nil {
		return dataError(fmt.Errorf("record mail: %w", err))
	}
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_mail_recipients (mail_id, position, address, field, status, reply)
			VALUES ($1, $2, $3, $4, $5, $6)`, mailID, r.Position, r.Address, r.Field, r.Status, r.Reply); err != nil {
			return dataError(fmt.Errorf("record mail recipient: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record mail recipients: %w", err)
	}
	return nil
}

// RecordDelivery records one SMTP transaction's outcome for each of its
// recipients, in one transaction. A recipient deferred for longer than
// deferLimit is refused.
func (s *Store) RecordDelivery(ctx context.Context, mailID int64, d *mail.Delivery, deferLimit time.Duration) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record mail delivery: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, addr := range d.Accepted {
		if _, err := tx.ExecContext(ctx, `UPDATE node_mail_recipients SET status = 'sent', reply_code = 250, reply = '',
			attempts = attempts + 1, updated_at = now() WHERE mail_id = $1 AND lower(address) = lower($2)`, mailID, addr); err != nil {
			return fmt.Errorf("record mail delivery: %w", err)
		}
	}
	for _, r := range d.Refused {
		if _, err := tx.ExecContext(ctx, `UPDATE node_mail_recipients SET
				status = CASE WHEN $3 OR first_deferred_at < now() - make_interval(secs => $6) THEN 'refused' ELSE 'deferred' END,
				first_deferred_at = CASE WHEN $3 THEN first_deferred_at ELSE COALESCE(first_deferred_at, now()) END,
				reply_code = $4, reply = $5, attempts = attempts + 1, updated_at = now()
			WHERE mail_id = $1 AND lower(address) = lower($2)`,
			mailID, r.Address, r.Permanent(), r.Code, r.Reply, deferLimit.Seconds()); err != nil {
			return dataError(fmt.Errorf("record mail refusal: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record mail delivery: %w", err)
	}
	return nil
}

// NoteMailError records the last error of the mail with key (a transient
// failure that is retried).
func (s *Store) NoteMailError(ctx context.Context, key, msg string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE node_mail_log SET error = $2 WHERE key = $1`, key, msg)
	return err
}

// NoteMailDeferred records why the mail is retried (recipients deferred).
func (s *Store) NoteMailDeferred(ctx context.Context, mailID int64, msg string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE node_mail_log SET error = $2 WHERE id = $1`, mailID, msg)
	return err
}

// MarkMailSent marks the mail sent now, with what went wrong for some
// recipients ("" when nothing did).
func (s *Store) MarkMailSent(ctx context.Context, mailID int64, msg string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'sent', sent_at = now(), error = $2 WHERE id = $1`, mailID, msg)
	return err
}

// MarkMailFailed marks the mail with key failed for good, with why.
func (s *Store) MarkMailFailed(ctx context.Context, key, msg string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'failed', error = $2 WHERE key = $1`, key, msg)
	return err
}
