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
	"github.com/vigil-health/vigil/internal/nodemail"
)

// Kinds of node e-mails (node_mail_log.kind).
const (
	NodeMailAlert     = "alert"
	NodeMailReminder  = "reminder"
	NodeMailRecovered = "recovered"
)

// Outcomes of SendNodeMail (node_mail_log.status, besides 'sending' and
// 'failed').
const (
	NodeMailSent         = "sent"
	NodeMailNoRecipients = "no_recipients"
)

// NodeMailFacts are what a node e-mail tells, from the node's latest
// evaluation.
type NodeMailFacts struct {
	LastContact       *time.Time
	LastWrite         *time.Time
	DWHVersion        string
	CurrentDWHVersion string
	// DailyErrorRate is today's error rate in percent (nil: nothing
	// processed today).
	DailyErrorRate *float64
	// ThresholdHours is the node's failure threshold.
	ThresholdHours int
}

// NodeMailRequest is one node e-mail the workflow decided on.
type NodeMailRequest struct {
	// Key is the idempotency key node:<id>:<condition>:<episode>:<seq>.
	Key       string
	NodeID    string
	Condition string
	// Kind is NodeMailAlert, NodeMailReminder or NodeMailRecovered.
	Kind string
	// Since is when the condition's episode began.
	Since time.Time
	Facts NodeMailFacts
}

// NodeMailResult is the outcome of SendNodeMail.
type NodeMailResult struct {
	// Status is NodeMailSent or NodeMailNoRecipients.
	Status string
	// Recipients is how many To addresses the mail went to (the addresses
	// stay in node_mail_log, out of workflow history).
	Recipients int
}

// SendNodeMail sends one node e-mail at most once per key:
//   - the key's row in node_mail_log is created (or found); a row already
//     'sent' returns at once;
//   - the recipients are the node's emergency-department main contacts and
//     all its IT contacts, unsubscribed ones excluded, de-duplicated
//     case-insensitively; none means no mail and status 'no_recipients',
//     with a warning logged the first time the key finds none (the
//     workflow asks again, same key, with every later observation; those
//     attempts log at debug level);
//   - the static CC addresses go in Cc;
//   - the mail is rendered in the node's language, with a Message-ID
//     derived from the key, and sent; the row becomes 'sent'.
//
// A permanent SMTP failure (or no SMTP configured) marks the row 'failed'
// and is non-retryable; a transient one is retried. A crash between the
// SMTP transaction and the final update repeats the mail once, with the
// same Message-ID.
func (a *Nodes) SendNodeMail(ctx context.Context, in *NodeMailRequest) (*NodeMailResult, error) {
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
		Status     string         `db:"status"`
		Recipients pq.StringArray `db:"recipients"`
	}
	if err := a.DB.GetContext(ctx, &row, `SELECT status, recipients FROM node_mail_log WHERE key = $1`, in.Key); err != nil {
		return nil, fmt.Errorf("read mail %s: %w", in.Key, err)
	}
	if row.Status == NodeMailSent {
		return &NodeMailResult{Status: NodeMailSent, Recipients: len(row.Recipients)}, nil
	}

	to, err := a.nodeRecipients(ctx, in.NodeID)
	if err != nil {
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
		}
		slog.Log(ctx, level, "node mail has no recipients: nothing sent", "node", in.NodeID, "condition", in.Condition, "kind", in.Kind, "key", in.Key)
		return &NodeMailResult{Status: NodeMailNoRecipients}, nil
	}
	cc := make([]string, 0, len(a.MailCC))
	for _, c := range a.MailCC {
		c = strings.TrimSpace(c)
		if c != "" && !slices.ContainsFunc(to, func(t string) bool { return strings.EqualFold(t, c) }) &&
			!slices.ContainsFunc(cc, func(x string) bool { return strings.EqualFold(x, c) }) {
			cc = append(cc, c)
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
		return nil, a.failMail(ctx, in.Key, temporal.NewNonRetryableApplicationError("render mail: "+err.Error(), ErrTypeMailPermanent, err))
	}
	msgID := NodeMailMessageID(in.Key)
	if _, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'sending', language = $2, recipients = $3, cc = $4,
		subject = $5, message_id = $6 WHERE key = $1`, in.Key, string(lang), pq.StringArray(to), pq.StringArray(cc), subject, msgID); err != nil {
		return nil, classifySQL(fmt.Errorf("record mail %s: %w", in.Key, err))
	}
	if a.Mailer == nil {
		return nil, a.failMail(ctx, in.Key, temporal.NewNonRetryableApplicationError("no SMTP configured", ErrTypeMailPermanent, nil))
	}
	err = a.Mailer.Send(ctx, mail.Message{MessageID: msgID, To: to, CC: cc, Subject: subject, Text: text, HTML: html})
	if err != nil {
		if mail.IsPermanent(err) {
			return nil, a.failMail(ctx, in.Key, temporal.NewNonRetryableApplicationError("send mail: "+err.Error(), ErrTypeMailPermanent, err))
		}
		if _, dbErr := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET error = $2 WHERE key = $1`, in.Key, err.Error()); dbErr != nil {
			slog.WarnContext(ctx, "node mail error not recorded", "key", in.Key, "err", dbErr)
		}
		return nil, fmt.Errorf("send mail %s: %w", in.Key, err)
	}
	if _, err := a.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE node_mail_log SET status = 'sent', sent_at = now(), error = '' WHERE key = $1`, in.Key); err != nil {
		return nil, fmt.Errorf("mark mail %s sent: %w", in.Key, err)
	}
	return &NodeMailResult{Status: NodeMailSent, Recipients: len(to)}, nil
}

// failMail records a permanent failure on the key's row and returns cause.
func (a *Nodes) failMail(ctx context.Context, key string, cause error) error {
	var ae *temporal.ApplicationError
	msg := cause.Error()
	if errors.As(cause, &ae) {
		msg = ae.Message()
	}
	if _, err := a.DB.ExecContext(ctx, `UPDATE node_mail_log SET status = 'failed', error = $2 WHERE key = $1`, key, msg); err != nil {
		return fmt.Errorf("record failed mail %s: %w", key, err)
	}
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
