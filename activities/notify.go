package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
)

// Error types of the notification activities, for workflows and retry
// policies.
const (
	// ErrTypeSlackPermanent is a Slack failure retrying cannot fix (missing
	// or archived channel, bot not in it, bad token); it is non-retryable.
	ErrTypeSlackPermanent = "SlackPermanent"
	// ErrTypeSlackRetryable is a rate limit or Slack-side failure; the
	// activity is retried, after Slack's Retry-After when it sent one.
	ErrTypeSlackRetryable = "SlackRetryable"
	// ErrTypeSMSRetryable is a rate limit or provider-side SMS failure.
	ErrTypeSMSRetryable = "SMSRetryable"
	// ErrTypeInvalidInput is an activity input missing a required field.
	ErrTypeInvalidInput = "InvalidInput"
)

// slackHistoryLimit is how many recent channel messages a retried post
// searches for a message whose timestamp was never stored.
const slackHistoryLimit = 50

// Notifier holds the activities that notify people outside Vigil: the
// incident's Slack message and SMS pages. Both channels are optional.
type Notifier struct {
	// Store is the incident store (Slack message rows, the SMS outbox);
	// Reference names the assignee.
	Store     *incident.Store
	Reference *reference.Store
	// Slack posts incident messages; nil disables Slack (SyncSlack is a no-op).
	Slack *slacknotify.Client
	// SlackChannel is the channel ID incident messages go to; empty means
	// the client's default channel.
	SlackChannel string
	// SMS sends text pages; nil disables SMS (SendSMS skips).
	SMS *sms.Client
	// WebURL is the base URL of Vigil's web UI; incident messages link to
	// WebURL/incidents/<id>. Empty shows no link.
	WebURL string
	// Metrics, when set, counts outcomes per channel.
	Metrics *metrics.IncidentMetrics
}

// SlackSyncInput is the incident as its Slack message should show it.
type SlackSyncInput struct {
	// IncidentMessage is the message's content. An empty AssigneeName is
	// looked up from AssigneeID; Link is set from the notifier's WebURL.
	slacknotify.IncidentMessage
	// Seq is the audit sequence number of this state; a call older than
	// the last one applied is ignored. Zero always applies.
	Seq        int
	AssigneeID string
}

// SlackSyncResult says what SyncSlack did.
type SlackSyncResult struct {
	// Enabled is false when Slack is not configured; nothing was done.
	Enabled bool
	// Posted: this call posted the incident's message. Updated: it edited
	// the existing one. Stale: a newer state was already shown.
	Posted  bool
	Updated bool
	Stale   bool
	// Recovered: the message was posted by an earlier attempt whose
	// timestamp was never stored, and was found in the channel's history.
	Recovered bool
	Channel   string
	TS        string
}

// SyncSlack keeps the incident's one Slack message up to date: the first
// call posts it, later calls edit it in place.
//
// A retried activity never posts twice: the row in incident_slack_messages
// is reserved with an empty ts and committed before the post, then locked (FOR
// UPDATE) for the rest of the call, so concurrent attempts take turns. An
// attempt that finds a reservation it did not make itself, still without a
// timestamp, knows an earlier attempt may have posted and died before
// storing the timestamp: it searches the channel's latest 50 messages for
// one carrying the incident's metadata (or block ids) and adopts it before
// posting anew. The remaining window - that message scrolled out of the
// last 50, or conversations.history refused with a permanent error (then
// the post goes ahead, as a duplicate page is safer than none) - is accepted.
func (n *Notifier) SyncSlack(ctx context.Context, in *SlackSyncInput) (*SlackSyncResult, error) {
	res, err := n.syncSlack(ctx, in)
	n.countNotified("slack", n.Slack != nil, err, func() string {
		switch {
		case res.Posted:
			return "posted"
		case res.Updated:
			return "updated"
		}
		return ""
	})
	return res, err
}

// countNotified counts one call of an enabled channel's activity in
// vigil_notifications_total: "error" when it failed, else its outcome (none
// counted when the outcome is "").
func (n *Notifier) countNotified(channel string, enabled bool, err error, outcome func() string) {
	if n.Metrics == nil || !enabled {
		return
	}
	if err != nil {
		n.Metrics.Notified(channel, "error")
	} else if o := outcome(); o != "" {
		n.Metrics.Notified(channel, o)
	}
}

func (n *Notifier) syncSlack(ctx context.Context, in *SlackSyncInput) (*SlackSyncResult, error) {
	if n.Slack == nil {
		return &SlackSyncResult{Enabled: false}, nil
	}
	if in.IncidentID == "" {
		return nil, temporal.NewNonRetryableApplicationError("incident id is required", ErrTypeInvalidInput, nil)
	}
	msg, err := n.slackMessage(ctx, in)
	if err != nil {
		return nil, err
	}
	channel := n.SlackChannel
	if channel == "" {
		channel = n.Slack.DefaultChannel()
	}

	// Reserve the incident's row, committed before anything is posted.
	reservedNow, err := n.store().ReserveSlackMessage(ctx, in.IncidentID, channel)
	if err != nil {
		return nil, err
	}
	row, err := n.store().LockSlackMessage(ctx, in.IncidentID)
	if err != nil {
		return nil, err
	}
	defer row.Close()
	out := &SlackSyncResult{Enabled: true, Channel: row.Channel, TS: row.TS}
	if in.Seq > 0 && in.Seq < row.LastSeq {
		out.Stale = true
		return out, nil
	}

	if row.TS != "" {
		err := n.Slack.Update(ctx, row.Channel, row.TS, msg)
		switch {
		case err == nil:
			out.Updated = true
			return out, row.Store(ctx, row.Channel, row.TS, in.Seq)
		case errors.Is(err, slacknotify.ErrMessageNotFound):
			// Deleted in Slack: post a new one below.
			logger(ctx).Warn("incident's slack message is gone; posting a new one", "incident_id", in.IncidentID)
		default:
			return nil, slackActivityError(err)
		}
	} else if !reservedNow {
		ts, err := n.Slack.FindIncidentMessage(ctx, channel, in.IncidentID, slackHistoryLimit)
		var se *slacknotify.Error
		switch {
		case err == nil && ts != "":
			if err := n.Slack.Update(ctx, channel, ts, msg); err != nil && !errors.Is(err, slacknotify.ErrMessageNotFound) {
				return nil, slackActivityError(err)
			} else if err == nil {
				out.Updated, out.Recovered, out.Channel, out.TS = true, true, channel, ts
				return out, row.Store(ctx, channel, ts, in.Seq)
			}
		case err == nil:
		case errors.As(err, &se) && se.Permanent:
			logger(ctx).Warn("cannot search slack history for an earlier post; posting", "incident_id", in.IncidentID, "error", err)
		default:
			return nil, slackActivityError(err)
		}
	}

	postedChannel, ts, err := n.Slack.Post(ctx, channel, msg)
	if err != nil {
		return nil, slackActivityError(err)
	}
	out.Posted, out.Channel, out.TS = true, postedChannel, ts
	return out, row.Store(ctx, postedChannel, ts, in.Seq)
}

// store is the incident store over the notifier's database.
func (n *Notifier) store() *incident.Store { return n.Store }

// slackMessage builds the message, looking up the assignee's name.
func (n *Notifier) slackMessage(ctx context.Context, in *SlackSyncInput) (slacknotify.IncidentMessage, error) {
	m := in.IncidentMessage
	m.Link = ""
	if m.AssigneeName == "" && in.AssigneeID != "" {
		who, err := n.Reference.Account(ctx, in.AssigneeID)
		switch {
		case errors.Is(err, reference.ErrNotFound):
			m.AssigneeName = in.AssigneeID
		case err == nil:
			m.AssigneeName = who.Name
		default:
			return m, fmt.Errorf("look up assignee %s: %w", in.AssigneeID, err)
		}
	}
	if n.WebURL != "" {
		m.Link = strings.TrimSuffix(n.WebURL, "/") + "/incidents/" + in.IncidentID
	}
	return m, nil
}

// slackActivityError turns a classified Slack error into the Temporal error
// that makes the activity retry (after Retry-After) or stop.
func slackActivityError(err error) error {
	var se *slacknotify.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.Permanent {
		return temporal.NewNonRetryableApplicationError(se.Error(), ErrTypeSlackPermanent, err)
	}
	return temporal.NewApplicationErrorWithOptions(se.Error(), ErrTypeSlackRetryable, temporal.ApplicationErrorOptions{
		NextRetryDelay: se.RetryAfter,
		Cause:          err,
	})
}

// SMSInput is one SMS page to one person.
type SMSInput struct {
	IncidentID string
	// Step names the page within the incident, as in PageInput; with the
	// recipient it keys the outbox row, so a retried page is sent once.
	Step string
	// Recipient is the staff id; the number is read from staff.phone.
	Recipient string
	Body      string
}

// SMSResult says whether the SMS went out; when it did not, Reason says why
// and the caller falls back to another channel.
type SMSResult struct {
	Sent   bool
	SID    string
	SentAt time.Time
	// Status is the outbox row's status: sent, skipped or failed.
	Status string
	Reason string
}

// SendSMS sends an SMS page through the outbox: it claims the row
// (incident, step, recipient, 'sms'), returns the recorded outcome if the
// row is already settled, and otherwise sends and records the outcome. A
// missing or malformed number marks the row skipped and a number or account
// the provider refuses marks it failed; both return Sent=false, not an
// error. Rate limits and provider outages return a retryable error (the row
// stays pending, its attempts counted), honouring Retry-After.
//
// Exactly once across crashes: before calling the provider, the attempt
// commits a send lease on the row that ends at the activity's deadline.
// Another attempt that finds the lease running waits for it to end. One
// that finds an earlier send without a known outcome (its worker was killed
// inside the call, or the connection was lost) first looks for the message
// in the provider's log, and records the one it finds instead of sending it
// again.
func (n *Notifier) SendSMS(ctx context.Context, in *SMSInput) (*SMSResult, error) {
	res, err := n.sendSMS(ctx, in)
	n.countNotified("sms", n.SMS != nil, err, func() string { return res.Status })
	return res, err
}

func (n *Notifier) sendSMS(ctx context.Context, in *SMSInput) (*SMSResult, error) {
	if in.IncidentID == "" || in.Step == "" || in.Recipient == "" {
		return nil, temporal.NewNonRetryableApplicationError("incident id, step and recipient are required", ErrTypeInvalidInput, nil)
	}
	claim, err := n.claimSMS(ctx, in)
	if err != nil {
		return nil, err
	}
	defer claim.Close()
	row := claim.Row
	switch row.Status {
	case "sent":
		out := &SMSResult{Sent: true, SID: row.ProviderRef, Status: row.Status}
		if row.SentAt != nil {
			out.SentAt = *row.SentAt
		}
		return out, nil
	case "skipped", "failed":
		return &SMSResult{Sent: false, SID: row.ProviderRef, Status: row.Status, Reason: row.LastError}, nil
	}

	if n.SMS == nil {
		return settleSMS(ctx, claim, "skipped", "", "SMS is not configured")
	}
	phone, found, err := claim.RecipientPhone(ctx, in.Recipient)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return settleSMS(ctx, claim, "skipped", "", "unknown staff member")
	case strings.TrimSpace(phone) == "":
		return settleSMS(ctx, claim, "skipped", "", "no phone number on file")
	case !sms.ValidE164(phone):
		return settleSMS(ctx, claim, "skipped", "", "the phone number on file is not in E.164 form")
	}

	inDoubtSince := claim.InDoubtSince
	if err := claim.StartSend(ctx, sendLeaseEnd(ctx)); err != nil {
		return nil, err
	}
	if inDoubtSince != nil {
		res, err := n.findSentSMS(ctx, claim, in, phone, *inDoubtSince)
		if res != nil || err != nil {
			return res, err
		}
	}

	sid, sendErr := n.SMS.Send(ctx, phone, in.Body)
	if sendErr == nil {
		sentAt, err := claim.MarkSent(ctx, sid)
		if err != nil {
			return nil, err
		}
		return &SMSResult{Sent: true, SID: sid, SentAt: sentAt, Status: "sent"}, nil
	}

	var se *sms.Error
	if errors.As(sendErr, &se) && !se.Retryable {
		logger(ctx).Warn("sms refused by the provider", "incident_id", in.IncidentID, "step", in.Step,
			"recipient", in.Recipient, "error", sendErr)
		return settleSMS(ctx, claim, "failed", sid, sendErr.Error())
	}
	// Retryable: count the attempt and keep the row pending. Unless the
	// provider answered, it may have taken the message: the send stays in
	// doubt and the next attempt reads the provider's log first.
	answered := se != nil && se.StatusCode >= 400
	return nil, retrySMS(ctx, claim, sendErr, answered)
}

// claimSMS claims the page's SMS outbox row. While another attempt's send
// lease runs (it may be calling the provider now), it waits for that
// attempt's outcome or for the lease to end, claiming again every 50 ms.
func (n *Notifier) claimSMS(ctx context.Context, in *SMSInput) (*incident.SMSClaim, error) {
	for {
		claim, err := n.store().ClaimSMS(ctx, in.IncidentID, in.Step, in.Recipient)
		if err != nil {
			return nil, err
		}
		if claim.Row.Status != "pending" || claim.LeaseLeft <= 0 {
			return claim, nil
		}
		claim.Close()
		wait := min(claim.LeaseLeft, 50*time.Millisecond)
		select {
		case <-ctx.Done():
			return nil, temporal.NewApplicationErrorWithOptions("another attempt is sending this SMS", ErrTypeSMSRetryable, temporal.ApplicationErrorOptions{
				NextRetryDelay: claim.LeaseLeft,
			})
		case <-time.After(wait):
		}
	}
}

// findSentSMS settles a send left in doubt by an earlier attempt: it looks
// for the message in the provider's log, sent since that attempt began
// (less a minute for clocks that differ), and records the first one no
// other page has recorded. It returns nil, nil when the message is not
// there, and the caller sends it.
func (n *Notifier) findSentSMS(ctx context.Context, claim *incident.SMSClaim, in *SMSInput, phone string, since time.Time) (*SMSResult, error) {
	refs, err := n.SMS.FindSent(ctx, phone, in.Body, since.Add(-time.Minute))
	if err != nil {
		return nil, retrySMS(ctx, claim, fmt.Errorf("look for an earlier attempt's message: %w", err), false)
	}
	ref, err := claim.UnrecordedRef(ctx, in.Recipient, refs)
	if err != nil || ref == "" {
		return nil, err
	}
	sentAt, err := claim.MarkSent(ctx, ref)
	if err != nil {
		return nil, err
	}
	logger(ctx).Info("sms found in the provider's log after an attempt without an answer; not sent again",
		"incident_id", in.IncidentID, "step", in.Step, "recipient", in.Recipient, "sid", ref)
	return &SMSResult{Sent: true, SID: ref, SentAt: sentAt, Status: "sent"}, nil
}

// retrySMS counts a failed attempt (answered: the provider said it did not
// take the message) and returns the retryable error, honouring the
// provider's Retry-After.
func retrySMS(ctx context.Context, claim *incident.SMSClaim, cause error, answered bool) error {
	if err := claim.CountAttempt(ctx, cause.Error(), answered); err != nil {
		return fmt.Errorf("%w (send: %w)", err, cause)
	}
	var delay time.Duration
	if se := (*sms.Error)(nil); errors.As(cause, &se) {
		delay = se.RetryAfter
	}
	return temporal.NewApplicationErrorWithOptions(cause.Error(), ErrTypeSMSRetryable, temporal.ApplicationErrorOptions{
		NextRetryDelay: delay,
		Cause:          cause,
	})
}

// sendLeaseEnd is when this attempt's send is given up: the activity's
// deadline (its context ends the provider call then), or 30 s from now
// outside an activity without one.
func sendLeaseEnd(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(30 * time.Second)
}

// settleSMS marks the outbox row skipped or failed, commits and answers
// Sent=false with the reason.
func settleSMS(ctx context.Context, claim *incident.SMSClaim, status, sid, reason string) (*SMSResult, error) {
	if err := claim.Settle(ctx, status, sid, reason); err != nil {
		return nil, err
	}
	return &SMSResult{Sent: false, SID: sid, Status: status, Reason: reason}, nil
}

// logger is the activity's logger, or a silent one when called outside an
// activity (tests).
func logger(ctx context.Context) sdklog.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}
