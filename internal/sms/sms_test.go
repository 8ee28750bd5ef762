package sms_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
)

const (
	accountSID = "AC00000000000000000000000000000001"
	authToken  = "super-secret-auth-token-42"
	from       = "+447700900999"
)

func newClient(t *testing.T) (*sms.Client, *smsfake.Server) {
	t.Helper()
	srv := smsfake.New(t, accountSID, authToken)
	return &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: from}, srv
}

func TestSend(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		to         string
		setup      func(*smsfake.Server)
		token      string
		wantSent   bool
		wantIs     error
		retryable  bool
		retryAfter time.Duration
		code       int
	}{
		{name: "success", to: "+447700900001", wantSent: true},
		{name: "429 with Retry-After seconds", to: "+447700900001",
			setup: func(s *smsfake.Server) {
				s.FailNext(smsfake.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "12"})
			},
			retryable: true, retryAfter: 12 * time.Second, code: 20429},
		{name: "503 with Retry-After date", to: "+447700900001",
			setup: func(s *smsfake.Server) {
				s.FailNext(smsfake.Failure{Status: 503, Message: "down", RetryAfter: httpDate})
			},
			retryable: true, retryAfter: 90 * time.Second},
		{name: "500 without Retry-After", to: "+447700900001",
			setup:     func(s *smsfake.Server) { s.FailNext(smsfake.Failure{Status: 500}) },
			retryable: true},
		{name: "21211 invalid To", to: "+447700900002",
			setup:  func(s *smsfake.Server) { s.RejectNumber("+447700900002", 21211) },
			wantIs: sms.ErrBadNumber, code: 21211},
		{name: "21614 not mobile", to: "+447700900003",
			setup:  func(s *smsfake.Server) { s.RejectNumber("+447700900003", 21614) },
			wantIs: sms.ErrBadNumber, code: 21614},
		{name: "21610 unsubscribed", to: "+447700900004",
			setup:  func(s *smsfake.Server) { s.RejectNumber("+447700900004", 21610) },
			wantIs: sms.ErrBadNumber, code: 21610},
		{name: "21408 region not enabled", to: "+447700900005",
			setup:  func(s *smsfake.Server) { s.RejectNumber("+447700900005", 21408) },
			wantIs: sms.ErrBadNumber, code: 21408},
		{name: "other 400", to: "+447700900001",
			setup: func(s *smsfake.Server) {
				s.FailNext(smsfake.Failure{Status: 400, Code: 21606, Message: "From is not valid"})
			},
			wantIs: sms.ErrRejected, code: 21606},
		{name: "401 wrong token", to: "+447700900001", token: "wrong-token", wantIs: sms.ErrAuth, code: 20003},
		{name: "403", to: "+447700900001",
			setup:  func(s *smsfake.Server) { s.FailNext(smsfake.Failure{Status: 403, Code: 20003, Message: "Forbidden"}) },
			wantIs: sms.ErrAuth, code: 20003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newClient(t)
			if tt.token != "" {
				c.AuthToken = tt.token
			}
			if tt.setup != nil {
				tt.setup(srv)
			}
			sid, err := c.Send(context.Background(), tt.to, "CRITICAL CARDIAC_ARREST in ICU-3")
			if tt.wantSent {
				require.NoError(t, err)
				require.Equal(t, []smsfake.Message{{SID: sid, To: tt.to, From: from, Body: "CRITICAL CARDIAC_ARREST in ICU-3"}}, srv.Messages())
				return
			}
			require.Error(t, err)
			require.Empty(t, sid)
			require.Empty(t, srv.Messages())
			var se *sms.Error
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.retryable, se.Retryable)
			require.Equal(t, tt.code, se.Code)
			require.InDelta(t, tt.retryAfter.Seconds(), se.RetryAfter.Seconds(), 2)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			for _, sentinel := range []error{sms.ErrBadNumber, sms.ErrAuth, sms.ErrRejected} {
				if !errors.Is(sentinel, tt.wantIs) {
					require.False(t, errors.Is(err, sentinel), "%v is not %v", err, sentinel)
				}
			}
			require.NotContains(t, err.Error(), authToken)
		})
	}
}

func TestE164IsCheckedBeforeSending(t *testing.T) {
	tests := []struct {
		number string
		valid  bool
	}{
		{"+447700900001", true},
		{"+12025550123", true},
		{"+12345678", true},
		{"+123456789012345", true},
		{"+1234567", false},
		{"+1234567890123456", false},
		{"447700900001", false},
		{"+44 7700 900001", false},
		{"+0447700900001", false},
		{"", false},
		{"+44770090000x", false},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			require.Equal(t, tt.valid, sms.ValidE164(tt.number))
			if tt.valid {
				return
			}
			c, srv := newClient(t)
			_, err := c.Send(context.Background(), tt.number, "x")
			require.ErrorIs(t, err, sms.ErrBadNumber)
			require.Zero(t, srv.Calls(), "nothing is sent to a malformed number")
		})
	}
}

func TestLongBodiesAreCut(t *testing.T) {
	c, srv := newClient(t)
	_, err := c.Send(context.Background(), "+447700900001", strings.Repeat("é", 2000))
	require.NoError(t, err)
	require.Len(t, []rune(srv.Messages()[0].Body), sms.MaxBodyRunes)
}

func TestTransportFailureIsRetryable(t *testing.T) {
	c, srv := newClient(t)
	srv.Close()
	_, err := c.Send(context.Background(), "+447700900001", "x")
	var se *sms.Error
	require.ErrorAs(t, err, &se)
	require.True(t, se.Retryable)
	require.NotContains(t, err.Error(), authToken)
}

func TestClientNeverShowsTheToken(t *testing.T) {
	c := &sms.Client{BaseURL: "http://x", AccountSID: accountSID, AuthToken: authToken, From: from}
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("sms", "client", c, "value", *c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprint(*c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", c), buf.String()} {
		require.NotContains(t, s, authToken)
	}
	require.Contains(t, buf.String(), accountSID)
}

func TestFindSent(t *testing.T) {
	c, srv := newClient(t)
	ctx := context.Background()
	// 120 other messages to the number after the one sought, so it is on
	// the third page of 50.
	sought, err := c.Send(ctx, "+447700900123", "the page")
	require.NoError(t, err)
	for i := range 120 {
		_, err := c.Send(ctx, "+447700900123", fmt.Sprintf("other %d", i))
		require.NoError(t, err)
	}
	_, err = c.Send(ctx, "+447700900124", "the page")
	require.NoError(t, err)

	tests := []struct {
		name  string
		to    string
		body  string
		since time.Time
		want  []string
	}{
		{name: "found on a later page", to: "+447700900123", body: "the page", since: time.Now().Add(-time.Minute), want: []string{sought}},
		{name: "older than since", to: "+447700900123", body: "the page", since: time.Now().Add(time.Minute)},
		{name: "other body", to: "+447700900123", body: "not sent"},
		{name: "other number", to: "+447700900125", body: "the page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.FindSent(ctx, tt.to, tt.body, tt.since)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	srv.SetOutage(&smsfake.Failure{Status: http.StatusServiceUnavailable, Code: 20503, Message: "Service Unavailable"})
	_, err = c.FindSent(ctx, "+447700900123", "the page", time.Time{})
	var se *sms.Error
	require.ErrorAs(t, err, &se)
	require.True(t, se.Retryable)
}
