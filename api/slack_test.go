package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/slacknotify"
)

const slackTestSecret = "slack-signing-secret-for-tests"

// slackForm encodes a Slack interaction payload the way Slack posts it.
func slackForm(payload string) string {
	return url.Values{"payload": {payload}}.Encode()
}

// slackRequest posts body to the interactions endpoint, signed with secret
// at the given time ("" secret: unsigned).
func slackRequest(t *testing.T, h http.Handler, secret, body string, at time.Time) *httptest.ResponseRecorder {
	t.Helper()
	var headers []string
	if secret != "" {
		for k, v := range slacknotify.SignatureHeaders(secret, []byte(body), at) {
			headers = append(headers, k, v[0])
		}
	}
	return do(t, h, "POST", "/v1/slack/interactions", "application/x-www-form-urlencoded", body, headers...)
}

// TestSlackInteractionsRefusedBeforeAnyLookup covers every answer given
// before the database or Temporal is touched (the deps are unreachable).
func TestSlackInteractionsRefusedBeforeAnyLookup(t *testing.T) {
	ack := slackForm(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"incident_acknowledge","value":"x"}]}`)
	now := time.Now()
	tests := []struct {
		name       string
		configured string
		signWith   string
		body       string
		at         time.Time
		status     int
		code       string
	}{
		{"not configured", "", slackTestSecret, ack, now, http.StatusServiceUnavailable, api.CodeUnavailable},
		{"unsigned", slackTestSecret, "", ack, now, http.StatusUnauthorized, api.CodeUnauthorized},
		{"wrong secret", slackTestSecret, "another-secret", ack, now, http.StatusUnauthorized, api.CodeUnauthorized},
		{"stale timestamp", slackTestSecret, slackTestSecret, ack, now.Add(-10 * time.Minute), http.StatusUnauthorized, api.CodeUnauthorized},
		{"no payload", slackTestSecret, slackTestSecret, "foo=bar", now, http.StatusBadRequest, api.CodeInvalidField},
		{"payload not JSON", slackTestSecret, slackTestSecret, slackForm("{nope"), now, http.StatusBadRequest, api.CodeInvalidJSON},
		{"too large", slackTestSecret, slackTestSecret, "payload=" + strings.Repeat("x", 2<<20), now, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps := unreachableDeps(t, nil)
			deps.SlackSigningSecret = tt.configured
			w := slackRequest(t, api.NewRouter(deps), tt.signWith, tt.body, tt.at)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			e := decodeError(t, w)
			require.Equal(t, tt.code, e.Code)
			require.NotContains(t, w.Body.String(), slackTestSecret)
		})
	}
}

func TestSlackInteractionsIgnoresOtherInteractions(t *testing.T) {
	deps := unreachableDeps(t, nil)
	deps.SlackSigningSecret = slackTestSecret
	router := api.NewRouter(deps)
	for _, payload := range []string{
		`{"type":"view_submission","user":{"id":"U1"}}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"something_else","value":"x"}]}`,
	} {
		w := slackRequest(t, router, slackTestSecret, slackForm(payload), time.Now())
		require.Equal(t, http.StatusOK, w.Code, payload)
		require.Empty(t, w.Body.String())
	}
}
