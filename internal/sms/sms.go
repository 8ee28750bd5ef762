// Package sms sends text messages through a Twilio-compatible REST API (the
// Messages resource of API version 2010-04-01), classifying failures for
// Temporal: rate limits and server errors are retryable (honouring
// Retry-After), a bad number or bad credentials are not.
package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultBaseURL is Twilio's API host.
const DefaultBaseURL = "https://api.twilio.com"

// MaxBodyRunes is the longest body Twilio accepts; longer bodies are cut.
const MaxBodyRunes = 1600

// Client sends messages. AuthToken is a secret: Client prints and logs with
// it redacted, and it never appears in an error.
type Client struct {
	// BaseURL is the API's scheme and host (DefaultBaseURL when empty).
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the sender: an E.164 number or a messaging service's number.
	From string
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// String describes the client without its auth token.
func (c Client) String() string {
	return fmt.Sprintf("sms.Client{BaseURL:%q AccountSID:%q AuthToken:%s From:%q}", c.BaseURL, c.AccountSID, redact(c.AuthToken), c.From)
}

// GoString is String, so %#v does not print the token either.
func (c Client) GoString() string { return c.String() }

// LogValue logs the client without its auth token.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("account_sid", c.AccountSID),
		slog.String("auth_token", redact(c.AuthToken)),
		slog.String("from", c.From),
	)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "xxxxx"
}

// Sentinels for errors.Is: the failures retrying cannot fix.
var (
	// ErrBadNumber: the recipient's number is malformed, not a mobile,
	// unsubscribed (STOP) or unreachable.
	ErrBadNumber = errors.New("sms: the recipient's number cannot receive messages")
	// ErrAuth: the account SID or auth token is wrong, or the account may
	// not send.
	ErrAuth = errors.New("sms: the provider refused the credentials")
	// ErrRejected: any other request the provider refuses (4xx).
	ErrRejected = errors.New("sms: the provider rejected the message")
)

// badNumberCodes are Twilio error codes that mean the To number is unusable.
var badNumberCodes = map[int]bool{
	21211: true, // invalid 'To' phone number
	21614: true, // 'To' number is not a valid mobile number
	21610: true, // attempt to send to an unsubscribed recipient
	21408: true, // permission to send an SMS has not been enabled for the region
	21612: true, // the 'To' number is not currently reachable
}

// Error is a failed send. It never holds the auth token.
type Error struct {
	// StatusCode is the HTTP status (0 for a transport failure).
	StatusCode int
	// Code and Message are the provider's error code and text, if any.
	Code    int
	Message string
	// Retryable failures may succeed later; RetryAfter, when set, is how
	// long the provider asked to wait.
	Retryable  bool
	RetryAfter time.Duration
	// Err is ErrBadNumber, ErrAuth, ErrRejected or the transport error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sms: send failed")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.StatusCode)
		if e.Code != 0 {
			fmt.Fprintf(&b, ", code %d", e.Code)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the sentinel or transport error.
func (e *Error) Unwrap() error { return e.Err }

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// ValidE164 reports whether number is in E.164 form: "+" and 8 to 15
// digits, the first not 0.
func ValidE164(number string) bool { return e164.MatchString(number) }

// messagesPath is the Messages resource of the account.
func (c *Client) messagesPath() string {
	return "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/Messages.json"
}

// do sends a request to path (with its query) on the API host and reads the
// answer. A transport failure is a retryable *Error.
func (c *Client) do(ctx context.Context, method, path string, form url.Values) (*http.Response, []byte, error) {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, body)
	if err != nil {
		return nil, nil, fmt.Errorf("sms: build request: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("sms: %s Messages.json: %w", method, ctx.Err())
		}
		return nil, nil, &Error{Retryable: true, Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp, nil, &Error{StatusCode: resp.StatusCode, Retryable: true, Err: err}
	}
	return resp, raw, nil
}

// fitBody cuts a body longer than MaxBodyRunes, as Send sends it.
func fitBody(body string) string {
	if utf8.RuneCountInString(body) > MaxBodyRunes {
		return string([]rune(body)[:MaxBodyRunes-1]) + "…"
	}
	return body
}

// Send sends body to the E.164 number to and returns the message's SID. A
// malformed number fails with ErrBadNumber before anything is sent.
//
// An *Error whose StatusCode is below 400 (no answer, or an unreadable
// one) leaves it unknown whether the provider took the message: FindSent
// tells.
func (c *Client) Send(ctx context.Context, to, body string) (sid string, err error) {
	if !ValidE164(to) {
		return "", &Error{Message: "the number is not in E.164 form", Err: ErrBadNumber}
	}
	form := url.Values{"To": {to}, "From": {c.From}, "Body": {fitBody(body)}}
	resp, raw, err := c.do(ctx, http.MethodPost, c.messagesPath(), form)
	if err != nil {
		return "", err
	}

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok struct {
			SID          string `json:"sid"`
			Status       string `json:"status"`
			ErrorCode    *int   `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || ok.SID == "" {
			// Accepted, but the answer is unreadable: retrying could send
			// twice, so this is not retryable.
			return "", &Error{StatusCode: resp.StatusCode, Message: "the provider's answer has no message sid", Err: ErrRejected}
		}
		if ok.Status == "failed" || ok.Status == "undelivered" {
			e := &Error{StatusCode: resp.StatusCode, Message: "the provider reports the message " + ok.Status, Err: ErrRejected}
			if ok.ErrorCode != nil {
				e.Code = *ok.ErrorCode
				if badNumberCodes[e.Code] {
					e.Err = ErrBadNumber
				}
			}
			return ok.SID, e
		}
		return ok.SID, nil
	}

	return "", apiError(resp, raw)
}

// apiError classifies the provider's error answer.
func apiError(resp *http.Response, raw []byte) *Error {
	var apiErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &apiErr)
	e := &Error{StatusCode: resp.StatusCode, Code: apiErr.Code, Message: apiErr.Message}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		e.Retryable = true
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Err = ErrAuth
	case badNumberCodes[apiErr.Code]:
		e.Err = ErrBadNumber
	default:
		e.Err = ErrRejected
	}
	return e
}

// findPages is how many pages of the provider's log FindSent reads at most.
const findPages = 5

// FindSent looks in the provider's message log for messages from the
// client's sender to the number to with exactly body (as Send sends it),
// created at or after since, and returns their SIDs, newest first. It
// skips messages the provider reports failed or undelivered. It is how a
// send that ended without an answer (a process killed inside the call, a
// lost connection) is settled without sending the message twice.
//
// It reads the Messages list resource (GET Messages.json?To=&From=), newest
// first, following next_page_uri until the messages are older than since,
// at most findPages pages of 50.
func (c *Client) FindSent(ctx context.Context, to, body string, since time.Time) ([]string, error) {
	body = fitBody(body)
	q := url.Values{"To": {to}, "From": {c.From}, "PageSize": {"50"}}
	next := c.messagesPath() + "?" + q.Encode()
	var sids []string
	for page := 0; page < findPages && next != ""; page++ {
		resp, raw, err := c.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 200 || resp.StatusCode >= 300 {
			return nil, apiError(resp, raw)
		}
		var list struct {
			Messages []struct {
				SID         string `json:"sid"`
				To          string `json:"to"`
				From        string `json:"from"`
				Body        string `json:"body"`
				Status      string `json:"status"`
				DateCreated string `json:"date_created"`
			} `json:"messages"`
			NextPageURI string `json:"next_page_uri"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, &Error{StatusCode: resp.StatusCode, Retryable: true, Message: "the provider's message list is unreadable", Err: err}
		}
		older := false
		for _, m := range list.Messages {
			created, err := time.Parse(time.RFC1123Z, m.DateCreated)
			if err != nil {
				return nil, &Error{StatusCode: resp.StatusCode, Retryable: true, Message: "a message in the provider's list has an unreadable date_created", Err: err}
			}
			if created.Before(since) {
				older = true
				continue
			}
			if m.To == to && m.From == c.From && m.Body == body && m.Status != "failed" && m.Status != "undelivered" && m.SID != "" {
				sids = append(sids, m.SID)
			}
		}
		next = list.NextPageURI
		if older {
			break
		}
	}
	return sids, nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. Unreadable or past values give 0 (the caller's own backoff).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
