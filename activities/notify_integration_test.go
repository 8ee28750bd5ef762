//go:build integration

package activities_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "activities", &db, nil)) }

const (
	slackToken = "xoxb-activities-test"
	channel    = "C0INCIDENTS"
	accountSID = "AC0000000000000000000000000000000a"
	authToken  = "activities-auth-token"
)

// newIncident inserts an incident row and returns its id.
func newIncident(t *testing.T) string {
	t.Helper()
	id := uuid.NewString()
	now := time.Now().UTC()
	_, err := db.Exec(`
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, status, opened_at, last_alert_at)
		VALUES ($1, $2, $3, 'CARDIAC_ARREST', 'CRITICAL', 'P001', 'ICU-3', 'OPEN', $4, $4)`,
		id, "incident:"+id, id, now)
	require.NoError(t, err)
	return id
}

// newStaff inserts a staff member with phone and returns the id.
func newStaff(t *testing.T, phone string) string {
	t.Helper()
	id := "T" + uuid.NewString()[:8]
	_, err := db.Exec(`INSERT INTO staff (id, login, name, role, phone) VALUES ($1, $2, $3, 'NURSE', $4)`,
		id, "login-"+id, "Nurse "+id, phone)
	require.NoError(t, err)
	return id
}

func slackNotifier(t *testing.T) (*activities.Notifier, *slackfake.Server) {
	t.Helper()
	srv := slackfake.New(t)
	srv.Token = slackToken
	c := slacknotify.New(slacknotify.Config{Token: slackToken, APIURL: srv.APIURL(), DefaultChannel: channel})
	return &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, Slack: c, WebURL: "https://vigil.example"}, srv
}

func syncInput(id, status string, seq int) *activities.SlackSyncInput {
	return &activities.SlackSyncInput{Seq: seq, IncidentMessage: slacknotify.IncidentMessage{
		IncidentID: id, Status: status, Severity: "CRITICAL", AlertType: "CARDIAC_ARREST",
		Room: "ICU-3", AlertCount: 1, OpenedAt: time.Now().UTC(),
	}}
}

func storedTS(t *testing.T, id string) string {
	t.Helper()
	var ts string
	require.NoError(t, db.Get(&ts, `SELECT ts FROM incident_slack_messages WHERE incident_id = $1`, id))
	return ts
}

func TestSyncSlack_PostsOnceThenUpdatesInPlace(t *testing.T) {
	ctx := context.Background()
	n, srv := slackNotifier(t)
	id := newIncident(t)
	nurse := newStaff(t, "+447700900101")

	first, err := n.SyncSlack(ctx, syncInput(id, "OPEN", 1))
	require.NoError(t, err)
	require.True(t, first.Enabled)
	require.True(t, first.Posted)
	require.Equal(t, channel, first.Channel)
	require.Equal(t, first.TS, storedTS(t, id))

	steps := []struct {
		status   string
		seq      int
		assignee string
		stale    bool
	}{
		{"ASSIGNED", 3, nurse, false},
		{"ASSIGNED", 3, nurse, false}, // a retry of the same state
		{"OPEN", 2, "", true},         // an older state arriving late
		{"ACKNOWLEDGED", 4, nurse, false},
		{"RESOLVED", 6, nurse, false},
	}
	for _, st := range steps {
		in := syncInput(id, st.status, st.seq)
		in.AssigneeID = st.assignee
		res, err := n.SyncSlack(ctx, in)
		require.NoError(t, err)
		require.False(t, res.Posted)
		require.Equal(t, st.stale, res.Stale)
		require.Equal(t, !st.stale, res.Updated)
		require.Equal(t, first.TS, res.TS)
	}
	msgs := srv.Messages(channel)
	require.Len(t, msgs, 1, "one message per incident")
	require.Equal(t, 4, msgs[0].Updates)
	require.Equal(t, 1, srv.Calls("chat.postMessage"))
	require.Contains(t, msgs[0].Text, "Resolved")
	require.Contains(t, string(msgs[0].Attachments), slacknotify.ColorResolved)
	require.Contains(t, string(msgs[0].Attachments), "Nurse "+nurse, "the assignee's name is looked up")
	require.Contains(t, string(msgs[0].Attachments), "https://vigil.example/incidents/"+id)
}

// TestSyncSlack_RetryAfterCrashDoesNotPostTwice covers an attempt that dies
// between Slack accepting the post and the timestamp being stored.
func TestSyncSlack_RetryAfterCrashDoesNotPostTwice(t *testing.T) {
	tests := []struct {
		name string
		// crash leaves the reservation behind, with or without a message.
		crash     func(t *testing.T, n *activities.Notifier, srv *slackfake.Server, id string)
		recovered bool
	}{
		{
			name: "post landed, reply lost",
			crash: func(t *testing.T, n *activities.Notifier, srv *slackfake.Server, id string) {
				srv.FailNext("chat.postMessage", slackfake.Failure{Status: 502, Apply: true})
				_, err := n.SyncSlack(context.Background(), syncInput(id, "OPEN", 1))
				var appErr *temporal.ApplicationError
				require.ErrorAs(t, err, &appErr)
				require.False(t, appErr.NonRetryable())
				require.Equal(t, 2, len(srv.Messages(channel)), "the post reached the channel, next to the other incident's")
				require.Empty(t, storedTS(t, id))
			},
			recovered: true,
		},
		{
			name: "process died after posting, before storing",
			crash: func(t *testing.T, n *activities.Notifier, srv *slackfake.Server, id string) {
				_, err := db.Exec(`INSERT INTO incident_slack_messages (incident_id, channel, ts) VALUES ($1, $2, '')`, id, channel)
				require.NoError(t, err)
				_, _, err = n.Slack.Post(context.Background(), channel, slacknotify.IncidentMessage{IncidentID: id, Status: "OPEN", Severity: "CRITICAL"})
				require.NoError(t, err)
			},
			recovered: true,
		},
		{
			name: "process died before posting",
			crash: func(t *testing.T, n *activities.Notifier, srv *slackfake.Server, id string) {
				_, err := db.Exec(`INSERT INTO incident_slack_messages (incident_id, channel, ts) VALUES ($1, $2, '')`, id, channel)
				require.NoError(t, err)
			},
			recovered: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, srv := slackNotifier(t)
			other := newIncident(t)
			_, err := n.SyncSlack(context.Background(), syncInput(other, "OPEN", 1))
			require.NoError(t, err, "another incident's message is in the channel too")
			id := newIncident(t)
			tt.crash(t, n, srv, id)

			res, err := n.SyncSlack(context.Background(), syncInput(id, "ASSIGNED", 2))
			require.NoError(t, err)
			require.Equal(t, tt.recovered, res.Recovered)
			require.Equal(t, !tt.recovered, res.Posted)
			require.Equal(t, res.TS, storedTS(t, id))
			require.Equal(t, 2, len(srv.Messages(channel)), "one message per incident, never two")
			require.GreaterOrEqual(t, srv.Calls("conversations.history"), 1)

			again, err := n.SyncSlack(context.Background(), syncInput(id, "ACKNOWLEDGED", 3))
			require.NoError(t, err)
			require.True(t, again.Updated)
			require.Equal(t, res.TS, again.TS)
			require.Equal(t, 2, len(srv.Messages(channel)))
		})
	}
}

func TestSyncSlack_ConcurrentAttemptsPostOnce(t *testing.T) {
	n, srv := slackNotifier(t)
	srv.OnCall(func(method string) {
		if method == "chat.postMessage" {
			time.Sleep(100 * time.Millisecond)
		}
	})
	id := newIncident(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = n.SyncSlack(context.Background(), syncInput(id, "OPEN", 1))
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, len(srv.Messages(channel)))
	require.Equal(t, 1, srv.Calls("chat.postMessage"))
}

func TestSyncSlack_Errors(t *testing.T) {
	tests := []struct {
		name         string
		failure      slackfake.Failure
		errType      string
		nonRetryable bool
		delay        time.Duration
	}{
		{"rate limited", slackfake.Failure{Status: 429, RetryAfter: 7}, activities.ErrTypeSlackRetryable, false, 7 * time.Second},
		{"server error", slackfake.Failure{Status: 503}, activities.ErrTypeSlackRetryable, false, 0},
		{"channel not found", slackfake.Failure{Error: "channel_not_found"}, activities.ErrTypeSlackPermanent, true, 0},
		{"bot not in channel", slackfake.Failure{Error: "not_in_channel"}, activities.ErrTypeSlackPermanent, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, srv := slackNotifier(t)
			srv.FailNext("chat.postMessage", tt.failure)
			_, err := n.SyncSlack(context.Background(), syncInput(newIncident(t), "OPEN", 1))
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tt.errType, appErr.Type())
			require.Equal(t, tt.nonRetryable, appErr.NonRetryable())
			require.Equal(t, tt.delay, appErr.NextRetryDelay())
			require.NotContains(t, err.Error(), slackToken)
			require.Empty(t, srv.Messages(channel))
		})
	}
}

func TestSyncSlack_DisabledIsANoOp(t *testing.T) {
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}}
	id := newIncident(t)
	res, err := n.SyncSlack(context.Background(), syncInput(id, "OPEN", 1))
	require.NoError(t, err)
	require.False(t, res.Enabled)
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM incident_slack_messages WHERE incident_id = $1`, id))
	require.Zero(t, rows)
}

type outboxRow struct {
	Status      string     `db:"status"`
	Attempts    int        `db:"attempts"`
	ProviderRef string     `db:"provider_ref"`
	LastError   string     `db:"last_error"`
	SentAt      *time.Time `db:"sent_at"`
}

func smsOutbox(t *testing.T, in *activities.SMSInput) outboxRow {
	t.Helper()
	var row outboxRow
	require.NoError(t, db.Get(&row, `
		SELECT status, attempts, provider_ref, last_error, sent_at FROM notification_outbox
		WHERE incident_id = $1 AND step = $2 AND recipient = $3 AND channel = 'sms'`, in.IncidentID, in.Step, in.Recipient))
	return row
}

func TestSendSMS(t *testing.T) {
	tests := []struct {
		name  string
		phone string
		// disabled leaves the Notifier without an SMS client.
		disabled bool
		setup    func(*smsfake.Server)
		// want is the outcome of the first call, and of a repeat.
		wantSent   bool
		wantStatus string
		wantReason string
		sends      int
	}{
		{name: "sends once", phone: "+447700900201", wantSent: true, wantStatus: "sent", sends: 1},
		{name: "missing phone", phone: "", wantStatus: "skipped", wantReason: "no phone number on file"},
		{name: "phone not E.164", phone: "07700 900202", wantStatus: "skipped", wantReason: "not in E.164"},
		{name: "bad number", phone: "+447700900203",
			setup:      func(s *smsfake.Server) { s.RejectNumber("+447700900203", 21211) },
			wantStatus: "failed", wantReason: "code 21211"},
		{name: "provider refuses the credentials", phone: "+447700900204",
			setup: func(s *smsfake.Server) {
				s.FailNext(smsfake.Failure{Status: 401, Code: 20003, Message: "Authenticate"})
			},
			wantStatus: "failed", wantReason: "HTTP 401"},
		{name: "sms disabled", phone: "+447700900205", disabled: true, wantStatus: "skipped", wantReason: "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := smsfake.New(t, accountSID, authToken)
			n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}}
			if !tt.disabled {
				n.SMS = &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}
			}
			if tt.setup != nil {
				tt.setup(srv)
			}
			in := &activities.SMSInput{IncidentID: newIncident(t), Step: "assign", Recipient: newStaff(t, tt.phone), Body: "CRITICAL CARDIAC_ARREST in ICU-3"}

			first, err := n.SendSMS(ctx, in)
			require.NoError(t, err)
			callsAfterFirst := srv.Calls()
			second, err := n.SendSMS(ctx, in)
			require.NoError(t, err)
			require.Equal(t, first, second, "a repeat returns the recorded outcome")
			require.Equal(t, callsAfterFirst, srv.Calls(), "a repeat never calls the provider")

			require.Equal(t, tt.wantSent, first.Sent)
			require.Equal(t, tt.wantStatus, first.Status)
			require.Contains(t, first.Reason, tt.wantReason)
			require.Len(t, srv.Messages(), tt.sends)
			row := smsOutbox(t, in)
			require.Equal(t, tt.wantStatus, row.Status)
			if tt.wantSent {
				require.Equal(t, srv.Messages()[0].SID, row.ProviderRef)
				require.Equal(t, first.SID, row.ProviderRef)
				require.NotNil(t, row.SentAt)
				require.Equal(t, 1, row.Attempts)
				require.Equal(t, "+447700900201", srv.Messages()[0].To)
			} else {
				require.Nil(t, row.SentAt)
				require.Equal(t, first.Reason, row.LastError)
			}
			require.NotContains(t, row.LastError, authToken)
		})
	}
}

func TestSendSMS_RetryableFailureKeepsTheRowPending(t *testing.T) {
	ctx := context.Background()
	srv := smsfake.New(t, accountSID, authToken)
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, SMS: &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}}
	in := &activities.SMSInput{IncidentID: newIncident(t), Step: "escalation-1", Recipient: newStaff(t, "+447700900301"), Body: "page"}

	srv.FailNext(smsfake.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "30"})
	_, err := n.SendSMS(ctx, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, activities.ErrTypeSMSRetryable, appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.Equal(t, 30*time.Second, appErr.NextRetryDelay())
	row := smsOutbox(t, in)
	require.Equal(t, "pending", row.Status)
	require.Equal(t, 1, row.Attempts)
	require.Contains(t, row.LastError, "429")

	res, err := n.SendSMS(ctx, in)
	require.NoError(t, err)
	require.True(t, res.Sent)
	row = smsOutbox(t, in)
	require.Equal(t, "sent", row.Status)
	require.Equal(t, 2, row.Attempts)
	require.Empty(t, row.LastError)
	require.Len(t, srv.Messages(), 1)
}

func TestSendSMS_ConcurrentAttemptsSendOnce(t *testing.T) {
	srv := smsfake.New(t, accountSID, authToken)
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, SMS: &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}}
	in := &activities.SMSInput{IncidentID: newIncident(t), Step: "assign", Recipient: newStaff(t, "+447700900401"), Body: "page"}
	var wg sync.WaitGroup
	results := make([]*activities.SMSResult, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = n.SendSMS(context.Background(), in) })
	}
	wg.Wait()
	for i := range results {
		require.NoError(t, errs[i])
		require.True(t, results[i].Sent)
		require.Equal(t, results[0].SID, results[i].SID)
	}
	require.Len(t, srv.Messages(), 1)
}

// interruptedSend leaves the SMS outbox row of in as a worker killed inside
// the provider call leaves it: a send started, leased until leaseUntil,
// with no outcome recorded. delivered says whether the provider took the
// message before the kill.
func interruptedSend(t *testing.T, n *activities.Notifier, in *activities.SMSInput, phone string, leaseUntil time.Time, delivered bool) {
	t.Helper()
	ctx := context.Background()
	claim, err := n.Store.ClaimSMS(ctx, in.IncidentID, in.Step, in.Recipient)
	require.NoError(t, err)
	defer claim.Close()
	require.NoError(t, claim.StartSend(ctx, leaseUntil))
	if delivered {
		_, err := n.SMS.Send(ctx, phone, in.Body)
		require.NoError(t, err)
	}
}

// TestSendSMS_ExactlyOnceAcrossAnInterruptedSend covers the attempts that
// follow a send without a known outcome: the provider's log decides whether
// to send again, so the recipient gets the page once.
func TestSendSMS_ExactlyOnceAcrossAnInterruptedSend(t *testing.T) {
	tests := []struct {
		name string
		// interrupt leaves the first attempt without an outcome.
		interrupt func(t *testing.T, n *activities.Notifier, srv *smsfake.Server, in *activities.SMSInput, phone string)
		// wantFirstErr: the interrupted attempt itself returned a retryable error.
		wantFirstErr bool
		wantAttempts int
	}{
		{
			name: "worker killed after the provider took the message",
			interrupt: func(t *testing.T, n *activities.Notifier, _ *smsfake.Server, in *activities.SMSInput, phone string) {
				interruptedSend(t, n, in, phone, time.Now().Add(-time.Second), true)
			},
			wantAttempts: 1,
		},
		{
			name: "worker killed before the request reached the provider",
			interrupt: func(t *testing.T, n *activities.Notifier, _ *smsfake.Server, in *activities.SMSInput, phone string) {
				interruptedSend(t, n, in, phone, time.Now().Add(-time.Second), false)
			},
			wantAttempts: 1,
		},
		{
			name: "connection lost after the provider took the message",
			interrupt: func(t *testing.T, n *activities.Notifier, srv *smsfake.Server, in *activities.SMSInput, _ string) {
				srv.DropNextAnswers(1)
				_, err := n.SendSMS(context.Background(), in)
				var appErr *temporal.ApplicationError
				require.ErrorAs(t, err, &appErr)
				require.Equal(t, activities.ErrTypeSMSRetryable, appErr.Type())
			},
			wantFirstErr: true,
			wantAttempts: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smsfake.New(t, accountSID, authToken)
			n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, SMS: &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}}
			phone := "+447700900501"
			in := &activities.SMSInput{IncidentID: newIncident(t), Step: "escalation-1", Recipient: newStaff(t, phone), Body: "page: Room 4"}
			tt.interrupt(t, n, srv, in, phone)

			res, err := n.SendSMS(context.Background(), in)
			require.NoError(t, err)
			require.True(t, res.Sent)
			require.Len(t, srv.Messages(), 1, "the page reached the provider once")
			require.Equal(t, srv.Messages()[0].SID, res.SID)
			row := smsOutbox(t, in)
			require.Equal(t, "sent", row.Status)
			require.Equal(t, res.SID, row.ProviderRef)
			require.Equal(t, tt.wantAttempts, row.Attempts)

			again, err := n.SendSMS(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, res.SID, again.SID)
			require.Len(t, srv.Messages(), 1)
		})
	}
}

// TestSendSMS_WaitsForAnotherAttemptsLease: an attempt that finds another
// one's send lease running waits for it to end, then settles the send.
func TestSendSMS_WaitsForAnotherAttemptsLease(t *testing.T) {
	srv := smsfake.New(t, accountSID, authToken)
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, SMS: &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}}
	phone := "+447700900502"
	in := &activities.SMSInput{IncidentID: newIncident(t), Step: "assign", Recipient: newStaff(t, phone), Body: "page"}
	interruptedSend(t, n, in, phone, time.Now().Add(time.Second), false)

	start := time.Now()
	res, err := n.SendSMS(context.Background(), in)
	require.NoError(t, err)
	require.True(t, res.Sent)
	require.GreaterOrEqual(t, time.Since(start), 800*time.Millisecond, "waited for the lease")
	require.Len(t, srv.Messages(), 1)

	// An attempt whose context ends first gives up, retryably, sending nothing.
	in2 := &activities.SMSInput{IncidentID: in.IncidentID, Step: "escalation-1", Recipient: in.Recipient, Body: "page"}
	interruptedSend(t, n, in2, phone, time.Now().Add(time.Minute), false)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = n.SendSMS(ctx, in2)
	require.Error(t, err)
	require.Len(t, srv.Messages(), 1)
	require.Equal(t, "pending", smsOutbox(t, in2).Status)
}

// TestSendSMS_InterruptedSendIgnoresAnotherPagesMessage: the same text to
// the same person for another step is that step's message, not this one's.
func TestSendSMS_InterruptedSendIgnoresAnotherPagesMessage(t *testing.T) {
	srv := smsfake.New(t, accountSID, authToken)
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, SMS: &sms.Client{BaseURL: srv.URL, AccountSID: accountSID, AuthToken: authToken, From: "+447700900999"}}
	phone := "+447700900503"
	first := &activities.SMSInput{IncidentID: newIncident(t), Step: "assign", Recipient: newStaff(t, phone), Body: "same text"}
	res, err := n.SendSMS(context.Background(), first)
	require.NoError(t, err)
	second := &activities.SMSInput{IncidentID: first.IncidentID, Step: "escalation-1", Recipient: first.Recipient, Body: "same text"}
	interruptedSend(t, n, second, phone, time.Now().Add(-time.Second), false)

	res2, err := n.SendSMS(context.Background(), second)
	require.NoError(t, err)
	require.NotEqual(t, res.SID, res2.SID)
	require.Len(t, srv.Messages(), 2)
}

func TestNotifyInputsAreValidated(t *testing.T) {
	n := &activities.Notifier{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, Slack: slacknotify.New(slacknotify.Config{Token: "x", APIURL: "http://127.0.0.1:1/"})}
	_, err := n.SyncSlack(context.Background(), &activities.SlackSyncInput{})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr) && appErr.NonRetryable())
	_, err = n.SendSMS(context.Background(), &activities.SMSInput{IncidentID: uuid.NewString()})
	require.True(t, errors.As(err, &appErr) && appErr.NonRetryable())
}
