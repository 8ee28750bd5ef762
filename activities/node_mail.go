package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/nodemail"
)

// NodeMailDeferLimit is how long a recipient the SMTP server keeps
// refusing with 4xx replies is retried; then the refusal counts as
// permanent, so the others' mail is complete and the reminder cadence goes
// on.
const NodeMailDeferLimit = 24 * time.Hour

// Statuses of node_mail_recipients.status.
const (
	rcptPending  = "pending"
	rcptSent     = "sent"
	rcptDeferred = "deferred"
	rcptRefused  = "refused"
)

// nodeMailRecipient is one node_mail_recipients row.
type nodeMailRecipient struct {
	Position      int        `db:"position"`
	Address       string     `db:"address"`
	Field         string     `db:"field"`
	Status        string     `db:"status"`
	Code          *int       `db:"reply_code"`
	Reply         string     `db:"reply"`
	FirstDeferred *time.Time `db:"first_deferred_at"`
}

func (r nodeMailRecipient) String() string {
	if r.Code == nil {
		return r.Address + ": " + r.Reply
	}
	return fmt.Sprintf("%s: %d %s", r.Address, *r.Code, r.Reply)
}

// SendNodeMail sends one node e-mail at most once per key and recipient:
//   - the key's row in node_mail_log is created (or found); a row already
//     'sent' returns at once;
//   - the recipients are the node's emergency-department main contacts and
//     all its IT contacts, unsubscribed ones excluded, de-duplicated
//     case-insensitively; none means no mail and status 'no_recipients',
//     with a warning logged the first time the key finds none (the
//     workflow asks again, same key, with every later observation; those
//     attempts log at debug level);
//   - the static CC addresses go in Cc;
//   - the first attempt that mails records every recipient in
//     node_mail_recipients; later attempts keep that list, and an address
//     that cannot be mailed is refused there at once;
//   - the mail is rendered in the node's language, with a Message-ID
//     derived from the key, and sent in one SMTP transaction to the
//     recipients not yet done; the headers always name every To and Cc
//     recipient. Each recipient's outcome is recorded: accepted ('sent'),
//     refused with 5xx ('refused') or with 4xx ('deferred').
//
// While a recipient is deferred the activity fails retryably and the
// retry mails only the recipients still open, never the ones that have it
// (after NodeMailDeferLimit a deferral counts as a refusal). When no
// recipient is open the row becomes 'sent' if anyone got the mail — a
// warning logs the refused addresses — and 'failed' (non-retryable) if
// every one was refused. A permanent failure of the transaction itself
// (or no SMTP configured) marks the row 'failed' and is non-retryable,
// unless an earlier attempt already reached someone; a transient one is
// retried. A crash between the SMTP transaction and the recording of its
// outcome repeats the mail once to the recipients of that transaction,
// with the same Message-ID.
func (a *Nodes) SendNodeMail(ctx context.Context, in *node.MailRequest) (*node.MailResult, error) {
	if in == nil || in.Key == "" || in.NodeID == "" || in.Condition == "" {
		return nil, temporal.NewNonRetryableApplicationError("key, node id and condition are required", ErrTypeInvalidInput, nil)
	}
	kind := nodemail.Kind(in.Kind)
	if !slices.Contains(nodemail.Kinds, kind) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown mail kind %q", in.Kind), ErrTypeInvalidInput, nil)
	}
	var s struct {
		Name     string `db:"common_name"`
		Language string `db:"mail_language"`
	}
	if err := a.DB.GetContext(ctx, &s, `SELECT COALESCE(max(common_name), '') AS common_name, COALESCE(max(mail_language), 'de') AS mail_language
		FROM node_settings WHERE node_id = $1`, in.NodeID); err != nil {
		return nil, fmt.Errorf("read node settings: %w", err)
	}
	lang, err := nodemail.ParseLanguage(s.Language)
	if err != nil {
		lang = nodemail.German
	}
	if _, err := a.DB.ExecContext(ctx, `INSERT INTO node_mail_log (key, node_id, condition, kind, status, language)
		VALUES ($1, $2, $3, $4, 'sending', $5) ON CONFLICT (key) DO NOTHING`,
		in.Key, in.NodeID, in.Condition, in.Kind, string(lang)); err != nil {
		return nil, classifySQL(fmt.Errorf("record mail %s: %w", in.Key, err))
	}
	var row struct {
		ID         int64          `db:"id"`
		Status     string         `db:"status"`
		Recipients pq.StringArray `db:"recipients"`
		CC         pq.StringArray `db:"cc"`
	}
	if err := a.DB.GetContext(ctx, &row, `SELECT id, status, recipients, cc FROM node_mail_log WHERE key = $1`, in.Key); err != nil {
		return nil, fmt.Errorf("read mail %s: %w", in.Key, err)
	}
	rcpts, err := a.mailRecipients(ctx, row.ID)
	if err != nil {
		return nil, err
	}
	if row.Status == node.MailSent {
		return nodeMailSentResult(row.Recipients, rcpts), nil
	}

	// The first attempt that mails fixes the recipients; later ones reuse
	// them, so every copy names the same people.
	to, cc := []string(row.Recipients), []string(row.CC)
	if len(rcpts) == 0 {
		if to, err = a.nodeRecipients(ctx, in.NodeID); err != nil {
			return nil, err
		}
		if len(to) == 0 {
			res, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'no_recipients', recipients = '{}', error = ''
				WHERE key = $1 AND status <> 'no_recipients'`, in.Key)
			if err != nil {
				return nil, fmt.Errorf("record mail %s: %w", in.Key, err)
			}
			level := slog.LevelDebug
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				level = slog.LevelWarn // the first time this mail found nobody
				a.Metrics.Mailed(in.Kind, "no_recipients", 0)
			}
			slog.Log(ctx, level, "node mail has no recipients: nothing sent", "node", in.NodeID, "condition", in.Condition, "kind", in.Kind, "key", in.Key)
			return &node.MailResult{Status: node.MailNoRecipients}, nil
		}
		cc = make([]string, 0, len(a.MailCC))
		for _, c := range a.MailCC {
			c = strings.TrimSpace(c)
			if c != "" && !slices.ContainsFunc(to, func(t string) bool { return strings.EqualFold(t, c) }) &&
				!slices.ContainsFunc(cc, func(x string) bool { return strings.EqualFold(x, c) }) {
				cc = append(cc, c)
			}
		}
	}
	zone := a.Zone
	if zone == nil {
		zone, _ = time.LoadLocation(nodemail.DefaultZone) // nil falls back inside Render
	}
	subject, text, html, err := nodemail.Render(lang, kind, nodemail.Data{
		NodeID: in.NodeID, ClinicName: orNodeName(in.NodeID, s.Name), Condition: in.Condition,
		LastContact: in.Facts.LastContact, LastWrite: in.Facts.LastWrite,
		DWHVersion: in.Facts.DWHVersion, CurrentDWHVersion: in.Facts.CurrentDWHVersion, CurrentI2B2Version: a.CurrentI2B2Version,
		ErrorRate: in.Facts.DailyErrorRate, ThresholdHours: in.Facts.ThresholdHours, Since: in.Since, Zone: zone,
	})
	if err != nil {
		return nil, a.failMail(ctx, in, 0, temporal.NewNonRetryableApplicationError("render mail: "+err.Error(), ErrTypeMailPermanent, err))
	}
	msgID := NodeMailMessageID(in.Key)
	if len(rcpts) == 0 {
		if to, cc, rcpts, err = a.recordRecipients(ctx, row.ID, string(lang), to, cc, subject, msgID); err != nil {
			return nil, err
		}
	}
	if a.Mailer == nil {
		return nil, a.failMail(ctx, in, 0, temporal.NewNonRetryableApplicationError("no SMTP configured", ErrTypeMailPermanent, nil))
	}

	var open []string
	for _, r := range rcpts {
		if r.Status == rcptPending || r.Status == rcptDeferred {
			open = append(open, r.Address)
		}
	}
	var sendErr error // a permanent failure of the transaction
	if len(open) > 0 {
		d, err := a.Mailer.Deliver(ctx, mail.Message{MessageID: msgID, To: to, CC: cc, Subject: subject, Text: text, HTML: html, Rcpt: open})
		switch {
		case err != nil && mail.IsPermanent(err):
			sendErr = err
		case err != nil:
			if _, dbErr := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET error = $2 WHERE key = $1`, in.Key, err.Error()); dbErr != nil {
				slog.WarnContext(ctx, "node mail error not recorded", "key", in.Key, "err", dbErr)
			}
			a.Metrics.Mailed(in.Kind, "retried", 0)
			return nil, fmt.Errorf("send mail %s: %w", in.Key, err)
		default:
			// The server has the mail: record that even if ctx ends now.
			if err := a.recordDelivery(context.WithoutCancel(ctx), row.ID, d); err != nil {
				return nil, err
			}
			if rcpts, err = a.mailRecipients(context.WithoutCancel(ctx), row.ID); err != nil {
				return nil, err
			}
		}
	}
	return a.concludeMail(context.WithoutCancel(ctx), in, row.ID, rcpts, sendErr)
}

// concludeMail decides the key's outcome from its recipients' states.
func (a *Nodes) concludeMail(ctx context.Context, in *node.MailRequest, mailID int64, rcpts []nodeMailRecipient, sendErr error) (*node.MailResult, error) {
	sentTo := 0 // contacts reached
	var sent, deferred, refused []nodeMailRecipient
	for _, r := range rcpts {
		switch r.Status {
		case rcptSent:
			sent = append(sent, r)
			if r.Field == "to" {
				sentTo++
			}
		case rcptDeferred:
			deferred = append(deferred, r)
		case rcptRefused:
			refused = append(refused, r)
		}
	}
	summary := func(what string, rs []nodeMailRecipient) string {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = r.String()
		}
		return what + ": " + strings.Join(parts, "; ")
	}
	var problems []string
	if sendErr != nil {
		problems = append(problems, "send mail: "+sendErr.Error())
	}
	if len(refused) > 0 {
		problems = append(problems, summary("refused", refused))
	}
	if sendErr == nil && len(deferred) > 0 {
		msg := strings.Join(append(problems, summary("deferred, retried", deferred)), "\n")
		if _, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET error = $2 WHERE id = $1`, mailID, msg); err != nil {
			return nil, fmt.Errorf("record mail %s: %w", in.Key, err)
		}
		slog.WarnContext(ctx, "node mail deferred by the SMTP server for some recipients; retrying them", "node", in.NodeID, "key", in.Key,
			"delivered", len(sent), "deferred", len(deferred), "refused", len(refused), "addresses", summary("deferred", deferred))
		a.Metrics.Mailed(in.Kind, "retried", 0)
		return nil, fmt.Errorf("send mail %s: %d of %d recipients deferred by the SMTP server", in.Key, len(deferred), len(rcpts))
	}
	msg := strings.Join(problems, "\n")
	if len(sent) == 0 {
		cause := sendErr
		if cause == nil {
			cause = errors.New(msg)
		}
		return nil, a.failMail(ctx, in, len(refused), temporal.NewNonRetryableApplicationError(msg, ErrTypeMailPermanent, cause))
	}
	if _, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'sent', sent_at = now(), error = $2 WHERE id = $1`, mailID, msg); err != nil {
		return nil, fmt.Errorf("mark mail %s sent: %w", in.Key, err)
	}
	a.Metrics.Mailed(in.Kind, node.MailSent, len(refused))
	if len(problems) > 0 {
		slog.WarnContext(ctx, "node mail reached only some recipients", "node", in.NodeID, "key", in.Key,
			"delivered", len(sent), "refused", len(refused), "undelivered", len(rcpts)-len(sent), "error", msg)
	}
	return &node.MailResult{Status: node.MailSent, Recipients: sentTo, Refused: len(refused)}, nil
}

// nodeMailSentResult is the result of a key already sent.
func nodeMailSentResult(to []string, rcpts []nodeMailRecipient) *node.MailResult {
	if len(rcpts) == 0 { // recorded before node_mail_recipients existed
		return &node.MailResult{Status: node.MailSent, Recipients: len(to)}
	}
	res := &node.MailResult{Status: node.MailSent}
	for _, r := range rcpts {
		switch {
		case r.Status == rcptSent && r.Field == "to":
			res.Recipients++
		case r.Status == rcptRefused:
			res.Refused++
		}
	}
	return res
}

// mailRecipients reads the mail's recipients in order.
func (a *Nodes) mailRecipients(ctx context.Context, mailID int64) ([]nodeMailRecipient, error) {
	var out []nodeMailRecipient
	if err := a.DB.SelectContext(ctx, &out, `SELECT position, address, field, status, reply_code, reply, first_deferred_at
		FROM node_mail_recipients WHERE mail_id = $1 ORDER BY position`, mailID); err != nil {
		return nil, fmt.Errorf("read mail recipients: %w", err)
	}
	return out, nil
}

// recordRecipients fixes the mail's headers and recipients: addresses that
// cannot be mailed are refused at once and left out of the headers. It
// returns the To and Cc headers and the recipients. When a concurrent
// attempt recorded them first, the insert fails (retryably) and the retry
// uses that attempt's list.
func (a *Nodes) recordRecipients(ctx context.Context, mailID int64, lang string, to, cc []string, subject, msgID string) (
	okTo, okCC []string, rcpts []nodeMailRecipient, err error,
) {
	seen := map[string]bool{}
	add := func(field string, addrs []string) []string {
		ok := []string{} // never NULL in node_mail_log
		for _, addr := range addrs {
			r := nodeMailRecipient{Position: len(rcpts), Address: addr, Field: field, Status: rcptPending}
			bare, err := mail.RecipientAddress(addr)
			if err != nil {
				r.Status, r.Reply = rcptRefused, "not a valid e-mail address"
			} else {
				// The envelope address, as Deliver reports it; the
				// headers keep the address as given.
				r.Address = bare
			}
			if seen[strings.ToLower(r.Address)] {
				continue
			}
			seen[strings.ToLower(r.Address)] = true
			if err == nil {
				ok = append(ok, addr)
			}
			rcpts = append(rcpts, r)
		}
		return ok
	}
	okTo, okCC = add("to", to), add("cc", cc)
	tx, err := a.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("record mail recipients: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE node_mail_log SET status = 'sending', language = $2, recipients = $3, cc = $4,
		subject = $5, message_id = $6 WHERE id = $1`, mailID, lang, pq.StringArray(okTo), pq.StringArray(okCC), subject, msgID); err != nil {
		return nil, nil, nil, classifySQL(fmt.Errorf("record mail: %w", err))
	}
	for _, r := range rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_mail_recipients (mail_id, position, address, field, status, reply)
			VALUES ($1, $2, $3, $4, $5, $6)`, mailID, r.Position, r.Address, r.Field, r.Status, r.Reply); err != nil {
			return nil, nil, nil, classifySQL(fmt.Errorf("record mail recipient: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, nil, fmt.Errorf("record mail recipients: %w", err)
	}
	return okTo, okCC, rcpts, nil
}

// recordDelivery records one transaction's outcome for each of its
// recipients. A recipient deferred for longer than NodeMailDeferLimit is
// refused.
func (a *Nodes) recordDelivery(ctx context.Context, mailID int64, d *mail.Delivery) error {
	tx, err := a.DB.BeginTxx(ctx, nil)
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
			mailID, r.Address, r.Permanent(), r.Code, r.Reply, NodeMailDeferLimit.Seconds()); err != nil {
			return classifySQL(fmt.Errorf("record mail refusal: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record mail delivery: %w", err)
	}
	return nil
}

// failMail records a permanent failure on the key's row, counts it (with
// the recipients refused for good) and returns cause.
func (a *Nodes) failMail(ctx context.Context, in *node.MailRequest, refused int, cause error) error {
	key := in.Key
	var ae *temporal.ApplicationError
	msg := cause.Error()
	if errors.As(cause, &ae) {
		msg = ae.Message()
	}
	if _, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'failed', error = $2 WHERE key = $1`, key, msg); err != nil {
		return fmt.Errorf("record failed mail %s: %w", key, err)
	}
	a.Metrics.Mailed(in.Kind, "failed", refused)
	return cause
}

// nodeRecipients are the node's mailed contacts: emergency-department main
// contacts and every IT contact, never unsubscribed ones, de-duplicated
// case-insensitively, in the order they were added.
func (a *Nodes) nodeRecipients(ctx context.Context, nodeID string) ([]string, error) {
	var emails []string
	if err := a.DB.SelectContext(ctx, &emails, `SELECT email FROM node_contacts
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

// NodeMailMessageID is the Message-ID of the mail with key: derived from
// the key, so a repeated send is recognisable.
func NodeMailMessageID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "<node-mail." + hex.EncodeToString(sum[:12]) + "@vigil>"
}

func orNodeName(nodeID, name string) string {
	if name != "" {
		return name
	}
	return "Node " + nodeID
}
