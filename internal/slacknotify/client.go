// Package slacknotify posts and updates Vigil's incident messages in Slack and
// verifies the signatures of Slack's interaction callbacks.
//
// One Slack message represents one incident for its whole life: it is posted
// once (chat.postMessage) and edited in place (chat.update) on every change,
// and carries an Acknowledge button while the incident awaits a responder.
// Errors are classified for Temporal: rate limits and server errors are
// retryable (with Slack's Retry-After), configuration problems are not (see
// ErrPermanent).
package slacknotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Config configures a Client. Token is a secret: Config logs and prints
// with it redacted.
type Config struct {
	// Token is the bot token (xoxb-...).
	Token string
	// APIURL overrides Slack's Web API base URL (https://slack.com/api/),
	// for tests and demos; it must end with a slash.
	APIURL string
	// DefaultChannel is where messages go when no channel is named; use a
	// channel ID (C...), which chat.update and conversations.history need.
	DefaultChannel string
	// HTTPClient sends the requests; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// String describes the configuration without the token.
func (c Config) String() string {
	return fmt.Sprintf("slacknotify.Config{Token:%s APIURL:%q DefaultChannel:%q}", redact(c.Token), c.APIURL, c.DefaultChannel)
}

// GoString is String, so %#v does not print the token either.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration without the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token", redact(c.Token)),
		slog.String("api_url", c.APIURL),
		slog.String("default_channel", c.DefaultChannel),
	)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "xxxxx"
}

// Client posts and updates incident messages. It is safe for concurrent use.
type Client struct {
	api            *slack.Client
	defaultChannel string
	apiURL         string
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if cfg.APIURL != "" {
		u := cfg.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	return &Client{api: slack.New(cfg.Token, opts...), defaultChannel: cfg.DefaultChannel, apiURL: cfg.APIURL}
}

// String describes the client without its token.
func (c *Client) String() string {
	return fmt.Sprintf("slacknotify.Client{APIURL:%q DefaultChannel:%q}", c.apiURL, c.defaultChannel)
}

// DefaultChannel is the channel used when none is named.
func (c *Client) DefaultChannel() string { return c.defaultChannel }

func (c *Client) channel(ch string) string {
	if ch == "" {
		return c.defaultChannel
	}
	return ch
}

// Post posts msg to channel ("" means the default channel) and returns the
// channel ID Slack answered with and the message's timestamp, which
// identifies it for Update.
func (c *Client) Post(ctx context.Context, channel string, msg IncidentMessage) (channelID, ts string, err error) {
	ch := c.channel(channel)
	if ch == "" {
		return "", "", &Error{Op: "chat.postMessage", Code: "channel_not_found", Permanent: true, Err: ErrPermanent}
	}
	channelID, ts, err = c.api.PostMessageContext(ctx, ch, msg.options()...)
	if err != nil {
		return "", "", classify("chat.postMessage", err)
	}
	return channelID, ts, nil
}

// PostAttachment posts one attachment (a coloured card with fields) to
// channel ("" means the default channel), with text as its notification
// fallback. Errors are classified like Post's.
func (c *Client) PostAttachment(ctx context.Context, channel, text string, att slack.Attachment) (ts string, err error) {
	ch := c.channel(channel)
	if ch == "" {
		return "", &Error{Op: "chat.postMessage", Code: "channel_not_found", Permanent: true, Err: ErrPermanent}
	}
	_, ts, err = c.api.PostMessageContext(ctx, ch, slack.MsgOptionText(text, false), slack.MsgOptionAttachments(att))
	if err != nil {
		return "", classify("chat.postMessage", err)
	}
	return ts, nil
}

// Update replaces the message at (channel, ts) with msg.
func (c *Client) Update(ctx context.Context, channel, ts string, msg IncidentMessage) error {
	if _, _, _, err := c.api.UpdateMessageContext(ctx, c.channel(channel), ts, msg.options()...); err != nil {
		return classify("chat.update", err)
	}
	return nil
}

// FindIncidentMessage looks through the channel's latest limit messages for
// the one posted for incidentID (by its metadata, or by its blocks when
// Slack omits metadata) and returns its timestamp, or "" when none is there.
// It lets a retried post find a message whose timestamp was never stored.
func (c *Client) FindIncidentMessage(ctx context.Context, channel, incidentID string, limit int) (string, error) {
	if limit <= 0 {
		limit = 50
	}
	resp, err := c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID:          c.channel(channel),
		Limit:              limit,
		IncludeAllMetadata: true,
	})
	if err != nil {
		return "", classify("conversations.history", err)
	}
	for _, m := range resp.Messages {
		if isIncidentMessage(m.Msg, incidentID) {
			return m.Timestamp, nil
		}
	}
	return "", nil
}

// isIncidentMessage reports whether m was posted for incidentID.
func isIncidentMessage(m slack.Msg, incidentID string) bool {
	if m.Metadata.EventType == MetadataEventType {
		if id, _ := m.Metadata.EventPayload["incident_id"].(string); id == incidentID {
			return true
		}
	}
	want := blockID(incidentID, "")
	hasBlock := func(bs []slack.Block) bool {
		for _, b := range bs {
			if b != nil && strings.HasPrefix(b.ID(), want) {
				return true
			}
		}
		return false
	}
	if hasBlock(m.Blocks.BlockSet) {
		return true
	}
	for _, a := range m.Attachments {
		if hasBlock(a.Blocks.BlockSet) {
			return true
		}
	}
	return false
}

// ErrPermanent marks a Slack failure that retrying will not fix: a missing
// or archived channel, a bot not in the channel, a revoked token, a message
// too long. errors.Is(err, ErrPermanent) tells the caller to stop retrying.
var ErrPermanent = errors.New("slack: permanent failure")

// ErrMessageNotFound is returned by Update when the message no longer exists
// (deleted in Slack); the caller may post a new one.
var ErrMessageNotFound = errors.New("slack: message not found")

// permanentCodes are Slack error codes that retrying cannot fix.
var permanentCodes = map[string]bool{
	"channel_not_found":    true,
	"not_in_channel":       true,
	"invalid_auth":         true,
	"not_authed":           true,
	"account_inactive":     true,
	"token_revoked":        true,
	"token_expired":        true,
	"is_archived":          true,
	"msg_too_long":         true,
	"no_text":              true,
	"invalid_blocks":       true,
	"invalid_attachments":  true,
	"missing_scope":        true,
	"restricted_action":    true,
	"cant_update_message":  true,
	"edit_window_closed":   true,
	"invalid_metadata":     true,
	"too_many_attachments": true,
}

// Error is a classified Slack failure. It never holds the token.
type Error struct {
	// Op is the Web API method ("chat.postMessage").
	Op string
	// Code is Slack's error code ("channel_not_found", "rate_limited") or
	// "http_<status>" for an HTTP-level failure.
	Code string
	// Retryable failures may succeed later; RetryAfter, when set, is how
	// long Slack asked to wait.
	Retryable  bool
	RetryAfter time.Duration
	// Permanent failures need a configuration change.
	Permanent bool
	// Err is the underlying error (ErrPermanent, ErrMessageNotFound or
	// slack-go's).
	Err error
}

func (e *Error) Error() string {
	msg := "slack " + e.Op + ": " + e.Code
	if e.Code == "transport" && e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// classify turns slack-go's errors into an *Error. Network errors and
// anything unknown stay retryable; only the known configuration problems
// are permanent.
func classify(op string, err error) error {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return &Error{Op: op, Code: "rate_limited", Retryable: true, RetryAfter: rl.RetryAfter, Err: err}
	case errors.As(err, &sc):
		code := fmt.Sprintf("http_%d", sc.Code)
		if sc.Code == http.StatusTooManyRequests || sc.Code >= 500 {
			return &Error{Op: op, Code: code, Retryable: true, Err: err}
		}
		if sc.Code == http.StatusUnauthorized || sc.Code == http.StatusForbidden || sc.Code == http.StatusNotFound {
			return &Error{Op: op, Code: code, Permanent: true, Err: fmt.Errorf("%w: %w", ErrPermanent, err)}
		}
		return &Error{Op: op, Code: code, Retryable: true, Err: err}
	case errors.As(err, &se):
		switch {
		case se.Err == "rate_limited" || se.Err == "ratelimited":
			return &Error{Op: op, Code: se.Err, Retryable: true, Err: err}
		case se.Err == "message_not_found":
			return &Error{Op: op, Code: se.Err, Err: fmt.Errorf("%w: %w", ErrMessageNotFound, err)}
		case permanentCodes[se.Err]:
			return &Error{Op: op, Code: se.Err, Permanent: true, Err: fmt.Errorf("%w: %w", ErrPermanent, err)}
		default:
			// internal_error, fatal_error, service_unavailable, request_timeout
			// and unknown codes: Slack's side, worth another try.
			return &Error{Op: op, Code: se.Err, Retryable: true, Err: err}
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("slack %s: %w", op, err)
	default:
		return &Error{Op: op, Code: "transport", Retryable: true, Err: err}
	}
}
