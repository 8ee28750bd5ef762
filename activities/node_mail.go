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
	name, language, err := a.Store.MailSettings(ctx, in.NodeID)
	if err != nil {
		return nil, err
	}
	lang, err := nodemail.ParseLanguage(language)
	if err != nil {
		lang = nodemail.German
	}
	row, err := a.Store.OpenMail(ctx, in, string(lang))
	if err != nil {
		return nil, nodeStoreError(err)
	}
	rcpts, err := a.Store.MailRecipients(ctx, row.ID)
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
		if to, err = a.Store.NodeRecipients(ctx, in.NodeID); err != nil {
			return nil, err
		}
		if len(to) == 0 {
			first, err := a.Store.MarkMailNoRecipients(ctx, in.Key)
			if err != nil {
				return nil, err
			}
			level := slog.LevelDebug
			if first {
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
		NodeID: in.NodeID, ClinicName: orNodeName(in.NodeID, name), Condition: in.Condition,
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
		if r.Status == node.RecipientPending || r.Status == node.RecipientDeferred {
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
			if dbErr := a.Store.NoteMailError(ctx, in.Key, err.Error()); dbErr != nil {
				slog.WarnContext(ctx, "node mail error not recorded", "key", in.Key, "err", dbErr)
			}
			a.Metrics.Mailed(in.Kind, "retried", 0)
			return nil, fmt.Errorf("send mail %s: %w", in.Key, err)
		default:
			// The server has the mail: record that even if ctx ends now.
			if err := a.Store.RecordDelivery(context.WithoutCancel(ctx), row.ID, d, NodeMailDeferLimit); err != nil {
				return nil, nodeStoreError(err)
			}
			if rcpts, err = a.Store.MailRecipients(context.WithoutCancel(ctx), row.ID); err != nil {
				return nil, err
			}
		}
	}
	return a.concludeMail(context.WithoutCancel(ctx), in, row.ID, rcpts, sendErr)
}

// concludeMail decides the key's outcome from its recipients' states.
func (a *Nodes) concludeMail(ctx context.Context, in *node.MailRequest, mailID int64, rcpts []node.MailRecipient, sendErr error) (*node.MailResult, error) {
	sentTo := 0 // contacts reached
	var sent, deferred, refused []node.MailRecipient
	for _, r := range rcpts {
		switch r.Status {
		case node.RecipientSent:
			sent = append(sent, r)
			if r.Field == "to" {
				sentTo++
			}
		case node.RecipientDeferred:
			deferred = append(deferred, r)
		case node.RecipientRefused:
			refused = append(refused, r)
		}
	}
	summary := func(what string, rs []node.MailRecipient) string {
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
		if err := a.Store.NoteMailDeferred(ctx, mailID, msg); err != nil {
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
	if err := a.Store.MarkMailSent(ctx, mailID, msg); err != nil {
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
func nodeMailSentResult(to []string, rcpts []node.MailRecipient) *node.MailResult {
	if len(rcpts) == 0 { // recorded before node_mail_recipients existed
		return &node.MailResult{Status: node.MailSent, Recipients: len(to)}
	}
	res := &node.MailResult{Status: node.MailSent}
	for _, r := range rcpts {
		switch {
		case r.Status == node.RecipientSent && r.Field == "to":
			res.Recipients++
		case r.Status == node.RecipientRefused:
			res.Refused++
		}
	}
	return res
}

// recordRecipients fixes the mail's headers and recipients: addresses that
// cannot be mailed are refused at once and left out of the headers. It
// returns the To and Cc headers and the recipients. When a concurrent
// attempt recorded them first, the insert fails (retryably) and the retry
// uses that attempt's list.
func (a *Nodes) recordRecipients(ctx context.Context, mailID int64, lang string, to, cc []string, subject, msgID string) (
	okTo, okCC []string, rcpts []node.MailRecipient, err error,
) {
	seen := map[string]bool{}
	add := func(field string, addrs []string) []string {
		ok := []string{} // never NULL in node_mail_log
		for _, addr := range addrs {
			r := node.MailRecipient{Position: len(rcpts), Address: addr, Field: field, Status: node.RecipientPending}
			bare, err := mail.RecipientAddress(addr)
			if err != nil {
				r.Status, r.Reply = node.RecipientRefused, "not a valid e-mail address"
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
	if err := a.Store.RecordMailRecipients(ctx, mailID, lang, okTo, okCC, subject, msgID, rcpts); err != nil {
		return nil, nil, nil, nodeStoreError(err)
	}
	return okTo, okCC, rcpts, nil
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
	if err := a.Store.MarkMailFailed(ctx, key, msg); err != nil {
		return fmt.Errorf("record failed mail %s: %w", key, err)
	}
	a.Metrics.Mailed(in.Kind, "failed", refused)
	return cause
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
