//go:build integration

package activities_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
	"github.com/vigil-health/vigil/internal/watch"
)

// TestNotifyChange_RetrySkipsTargetsAlreadyTold: Slack posts, the first SMS
// goes, the second fails with a 503; the retry sends only that second SMS.
func TestNotifyChange_RetrySkipsTargetsAlreadyTold(t *testing.T) {
	ctx := context.Background()
	slackSrv := slackfake.New(t)
	smsSrv := smsfake.New(t, accountSID, authToken)
	// A proxy in front of the fake answers 503 the first time the second
	// number is texted.
	target, err := url.Parse(smsSrv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	failed := false
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if form.Get("To") == "+447700900002" && !failed {
			failed = true
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":20500,"message":"busy","status":503}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	a := &activities.Watches{
		Store:  watchStore(),
		Slack:  slacknotify.New(slacknotify.Config{Token: slackSrv.Token, APIURL: slackSrv.APIURL()}),
		SMS:    &sms.Client{BaseURL: front.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"},
		London: time.UTC,
	}
	watchID, poll := uuid.NewString(), uuid.NewString()
	_, err = db.Exec(`INSERT INTO status_changes (watch_id, service_id, name, region, previous_capacity, capacity, rag, kind, detected_at, poll_id)
		VALUES ($1, '2000001', 'Leeds ED', 'Yorkshire', 'HIGH', 'LOW', 'AMBER', 'change', now(), $2)`, watchID, poll)
	require.NoError(t, err)
	in := &activities.NotifyChangeInput{
		WatchID: watchID, PollID: poll, SlackChannel: "C0NOTIFY1", SMSNumbers: []string{"+447700900001", "+447700900002"},
		Change: watch.Change{Kind: "change", ServiceID: "2000001", Name: "Leeds ED", Region: "Yorkshire",
			Previous: "HIGH", Capacity: "LOW", RAG: "AMBER", ChangedBy: "nurse.b"},
	}

	// The second SMS fails: the Slack post and the first SMS have gone.
	require.Error(t, a.NotifyChange(ctx, in))
	require.Len(t, slackSrv.Messages("C0NOTIFY1"), 1)
	require.Len(t, smsSrv.Messages(), 1)

	require.NoError(t, a.NotifyChange(ctx, in), "the retry succeeds")
	require.Len(t, slackSrv.Messages("C0NOTIFY1"), 1, "Slack is not posted again")
	var to []string
	for _, m := range smsSrv.Messages() {
		to = append(to, m.To)
	}
	require.Equal(t, []string{"+447700900001", "+447700900002"}, to, "each number texted once")
	require.Contains(t, smsSrv.Messages()[0].Body, "Leeds ED (2000001) in Yorkshire changed to LOW (AMBER) by nurse.b at")

	require.NoError(t, a.NotifyChange(ctx, in), "a third call sends nothing")
	require.Len(t, smsSrv.Messages(), 2)
}
