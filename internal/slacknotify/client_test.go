package slacknotify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
)

const token = "xoxb-test-token-0123456789"

func newClient(t *testing.T) (*slacknotify.Client, *slackfake.Server) {
	t.Helper()
	srv := slackfake.New(t)
	srv.Token = token
	return slacknotify.New(slacknotify.Config{Token: token, APIURL: srv.APIURL(), DefaultChannel: "C0VIGIL"}), srv
}

func message(status string) slacknotify.IncidentMessage {
	return slacknotify.IncidentMessage{
		IncidentID: "7a0c6f3e-2a7e-4c35-9f57-0d6c2f1d9a01", Status: status, Severity: "CRITICAL",
		AlertType: "CARDIAC_ARREST", Room: "ICU-3", AssigneeName: "Amelia Hart", AlertCount: 2,
		OpenedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Link: "https://vigil.example/incidents/7a0c",
	}
}

// attachment decodes the one attachment the fake stored for a message.
func attachment(t *testing.T, m slackfake.Message) slack.Attachment {
	t.Helper()
	var atts []slack.Attachment
	require.NoError(t, json.Unmarshal(m.Attachments, &atts))
	require.Len(t, atts, 1)
	return atts[0]
}

func hasAckButton(a slack.Attachment) bool {
	for _, b := range a.Blocks.BlockSet {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, el := range ab.Elements.ElementSet {
				if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.ActionID == slacknotify.ActionAcknowledge {
					return true
				}
			}
		}
	}
	return false
}

func TestPostThenUpdateInPlace(t *testing.T) {
	ctx := context.Background()
	c, srv := newClient(t)

	ch, ts, err := c.Post(ctx, "", message("OPEN"))
	require.NoError(t, err)
	require.Equal(t, "C0VIGIL", ch)
	require.NotEmpty(t, ts)
	msgs := srv.Messages("C0VIGIL")
	require.Len(t, msgs, 1)
	att := attachment(t, msgs[0])
	require.Equal(t, slacknotify.ColorCritical, att.Color)
	require.True(t, hasAckButton(att))
	require.JSONEq(t, `{"event_type":"vigil_incident","event_payload":{"incident_id":"7a0c6f3e-2a7e-4c35-9f57-0d6c2f1d9a01"}}`, string(msgs[0].Metadata))
	require.Contains(t, msgs[0].Text, "CRITICAL Cardiac arrest incident in ICU-3")

	require.NoError(t, c.Update(ctx, ch, ts, message("RESOLVED")))
	msgs = srv.Messages("C0VIGIL")
	require.Len(t, msgs, 1, "an update never posts")
	require.Equal(t, ts, msgs[0].TS)
	require.Equal(t, 1, msgs[0].Updates)
	att = attachment(t, msgs[0])
	require.Equal(t, slacknotify.ColorResolved, att.Color)
	require.False(t, hasAckButton(att))

	found, err := c.FindIncidentMessage(ctx, ch, "7a0c6f3e-2a7e-4c35-9f57-0d6c2f1d9a01", 50)
	require.NoError(t, err)
	require.Equal(t, ts, found)
	found, err = c.FindIncidentMessage(ctx, ch, "another-incident", 50)
	require.NoError(t, err)
	require.Empty(t, found)
}

func TestColorsAndButton(t *testing.T) {
	tests := []struct {
		severity, status string
		color            string
		button           bool
	}{
		{"CRITICAL", "OPEN", slacknotify.ColorCritical, true},
		{"HIGH", "ASSIGNED", slacknotify.ColorHigh, true},
		{"MEDIUM", "ACKNOWLEDGED", slacknotify.ColorMedium, false},
		{"LOW", "IN_PROGRESS", slacknotify.ColorLow, false},
		{"CRITICAL", "RESOLVED", slacknotify.ColorResolved, false},
	}
	for _, tt := range tests {
		t.Run(tt.severity+"/"+tt.status, func(t *testing.T) {
			m := message(tt.status)
			m.Severity = tt.severity
			require.Equal(t, tt.color, m.Color())
			require.Equal(t, tt.button, hasAckButton(m.Attachment()))
			for _, b := range m.Blocks() {
				require.True(t, strings.HasPrefix(b.ID(), "incident:"+m.IncidentID+":"), b.ID())
			}
		})
	}
}

func TestMrkdwnIsEscaped(t *testing.T) {
	m := message("OPEN")
	m.Room = "<!channel> & co"
	section, ok := m.Blocks()[0].(*slack.SectionBlock)
	require.True(t, ok)
	require.NotContains(t, section.Text.Text, "<!channel>")
	require.Contains(t, section.Text.Text, "&lt;!channel&gt; &amp; co")
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name       string
		failure    slackfake.Failure
		retryable  bool
		permanent  bool
		retryAfter time.Duration
		code       string
	}{
		{"429 with Retry-After", slackfake.Failure{Status: 429, RetryAfter: 7}, true, false, 7 * time.Second, "rate_limited"},
		{"429 without Retry-After", slackfake.Failure{Status: 429}, true, false, 0, "http_429"},
		{"rate_limited body", slackfake.Failure{Error: "rate_limited"}, true, false, 0, "rate_limited"},
		{"503", slackfake.Failure{Status: 503}, true, false, 0, "http_503"},
		{"internal_error", slackfake.Failure{Error: "internal_error"}, true, false, 0, "internal_error"},
		{"channel_not_found", slackfake.Failure{Error: "channel_not_found"}, false, true, 0, "channel_not_found"},
		{"not_in_channel", slackfake.Failure{Error: "not_in_channel"}, false, true, 0, "not_in_channel"},
		{"invalid_auth", slackfake.Failure{Error: "invalid_auth"}, false, true, 0, "invalid_auth"},
		{"account_inactive", slackfake.Failure{Error: "account_inactive"}, false, true, 0, "account_inactive"},
		{"is_archived", slackfake.Failure{Error: "is_archived"}, false, true, 0, "is_archived"},
		{"msg_too_long", slackfake.Failure{Error: "msg_too_long"}, false, true, 0, "msg_too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newClient(t)
			srv.FailNext("chat.postMessage", tt.failure)
			_, _, err := c.Post(context.Background(), "", message("OPEN"))
			require.Error(t, err)
			var se *slacknotify.Error
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.code, se.Code)
			require.Equal(t, tt.retryable, se.Retryable)
			require.Equal(t, tt.permanent, se.Permanent)
			require.Equal(t, tt.permanent, errors.Is(err, slacknotify.ErrPermanent))
			require.Equal(t, tt.retryAfter, se.RetryAfter)
			require.NotContains(t, err.Error(), token)
		})
	}
}

func TestUpdateOfAMissingMessage(t *testing.T) {
	c, _ := newClient(t)
	err := c.Update(context.Background(), "C0VIGIL", "1.000001", message("OPEN"))
	require.ErrorIs(t, err, slacknotify.ErrMessageNotFound)
	require.NotErrorIs(t, err, slacknotify.ErrPermanent)
}

func TestNetworkFailureIsRetryable(t *testing.T) {
	srv := slackfake.New(t)
	url := srv.APIURL()
	srv.Close()
	c := slacknotify.New(slacknotify.Config{Token: token, APIURL: url, DefaultChannel: "C0VIGIL"})
	_, _, err := c.Post(context.Background(), "", message("OPEN"))
	var se *slacknotify.Error
	require.ErrorAs(t, err, &se)
	require.True(t, se.Retryable)
	require.NotContains(t, err.Error(), token)
}

func TestConfigNeverShowsTheToken(t *testing.T) {
	cfg := slacknotify.Config{Token: token, APIURL: "http://x/", DefaultChannel: "C1"}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "slack", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), buf.String(), slacknotify.New(cfg).String()} {
		require.NotContains(t, s, token)
	}
	require.Contains(t, buf.String(), "xxxxx")
}

func TestVerifyRequest(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	now := time.Unix(1_800_000_000, 0)
	body := []byte("payload=%7B%22type%22%3A%22block_actions%22%7D")
	signed := func(at time.Time) http.Header { return slacknotify.SignatureHeaders(secret, body, at) }
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		want   error
	}{
		{"valid", secret, signed(now), body, nil},
		{"valid, four minutes old", secret, signed(now.Add(-4 * time.Minute)), body, nil},
		{"stale", secret, signed(now.Add(-6 * time.Minute)), body, slacknotify.ErrStaleTimestamp},
		{"from the future", secret, signed(now.Add(6 * time.Minute)), body, slacknotify.ErrStaleTimestamp},
		{"other secret", "another-secret", signed(now), body, slacknotify.ErrBadSignature},
		{"tampered body", secret, signed(now), append([]byte(nil), append(body, '1')...), slacknotify.ErrBadSignature},
		{"missing headers", secret, http.Header{}, body, slacknotify.ErrMissingSignature},
		{"no v0 prefix", secret, func() http.Header {
			h := signed(now)
			h.Set(slacknotify.HeaderSignature, strings.TrimPrefix(h.Get(slacknotify.HeaderSignature), "v0="))
			return h
		}(), body, slacknotify.ErrBadSignature},
		{"not hex", secret, func() http.Header {
			h := signed(now)
			h.Set(slacknotify.HeaderSignature, "v0=zz")
			return h
		}(), body, slacknotify.ErrBadSignature},
		{"timestamp not a number", secret, func() http.Header {
			h := signed(now)
			h.Set(slacknotify.HeaderTimestamp, "yesterday")
			return h
		}(), body, slacknotify.ErrStaleTimestamp},
		{"no secret configured", "", signed(now), body, slacknotify.ErrNoSigningSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := slacknotify.VerifyRequest(tt.secret, tt.header, tt.body, now)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestVerifyRequestMatchesSlackGo cross-checks the signature against
// slack-go's own verifier on a request signed now.
func TestVerifyRequestMatchesSlackGo(t *testing.T) {
	const secret = "cross-check-secret"
	body := []byte("payload=%7B%7D")
	h := slacknotify.SignatureHeaders(secret, body, time.Now())
	sv, err := slack.NewSecretsVerifier(h, secret)
	require.NoError(t, err)
	_, err = sv.Write(body)
	require.NoError(t, err)
	require.NoError(t, sv.Ensure())
	require.NoError(t, slacknotify.VerifyRequest(secret, h, body, time.Now()))
}
