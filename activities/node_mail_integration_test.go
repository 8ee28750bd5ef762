//go:build integration

package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/mail/mailsink"
	"github.com/vigil-health/vigil/internal/metrics"
	nodestore "github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/workflows"
)

// startRefusingSink runs an SMTP server that refuses the given recipients
// and returns a sender to it.
func startRefusingSink(t *testing.T, refuse map[string]int) (*mailsink.Sink, *mail.Sender) {
	t.Helper()
	sink, err := mailsink.Start(mailsink.Options{TLS: "starttls", RefuseRecipients: refuse})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	sender, err := mail.NewSender(mail.Config{
		Host: sink.Host(), Port: sink.Port(), TLS: mail.TLSStartTLS, From: "broker-monitor@vigil.test",
		RootCAs: sink.CertPool(), Timeout: 5 * time.Second,
	})
	require.NoError(t, err)
	return sink, sender
}

// knownNode gives node settings, so that the node API knows it.
func knownNode(t *testing.T, node string) {
	t.Helper()
	_, err := db.Exec(`INSERT INTO node_settings (node_id, common_name) VALUES ($1, 'Klinikum Test')`, node)
	require.NoError(t, err)
}

// mailRecipient is a node_mail_recipients row as a test sees it.
type mailRecipient struct {
	Address string `db:"address"`
	Status  string `db:"status"`
	Code    *int   `db:"reply_code"`
}

func mailState(t *testing.T, key string) (status, errText string, rcpts []mailRecipient) {
	t.Helper()
	var row struct {
		ID     int64  `db:"id"`
		Status string `db:"status"`
		Error  string `db:"error"`
	}
	require.NoError(t, db.Get(&row, `SELECT id, status, error FROM node_mail_log WHERE key = $1`, key))
	require.NoError(t, db.Select(&rcpts, `SELECT address, status, reply_code FROM node_mail_recipients WHERE mail_id = $1 ORDER BY position`, row.ID))
	return row.Status, row.Error, rcpts
}

func code(c int) *int { return &c }

// TestSendNodeMail_RefusedRecipients: one address the SMTP server refuses
// does not stop the mail for the others.
func TestSendNodeMail_RefusedRecipients(t *testing.T) {
	ctx := context.Background()
	request := func(node string) *nodestore.MailRequest {
		contact := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
		return &nodestore.MailRequest{
			Key: workflows.NodeMailKey(node, "OFFLINE", 1, 0), NodeID: node, Condition: "OFFLINE", Kind: nodestore.MailAlert,
			Since: contact.Add(73 * time.Hour), Facts: nodestore.MailFacts{LastContact: &contact, ThresholdHours: 72},
		}
	}
	// Every node has two contacts; the static CC makes three recipients.
	newNode := func(t *testing.T) string {
		node := newNodeID()
		knownNode(t, node)
		addContact(t, node, "ED", "chef@"+node+".test", true, false)
		addContact(t, node, "IT", "admin@"+node+".test", false, false)
		return node
	}

	t.Run("a permanent refusal: the others get the mail, the refused address is recorded", func(t *testing.T) {
		node := newNodeID()
		bad := "admin@" + node + ".test"
		sink, sender := startRefusingSink(t, map[string]int{bad: 550})
		reg := metrics.New()
		a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender, MailCC: []string{staticCC}, Metrics: reg.Nodes()}
		knownNode(t, node)
		addContact(t, node, "ED", "chef@"+node+".test", true, false)
		addContact(t, node, "IT", bad, false, false)
		logs := captureLogs(t)
		in := request(node)

		res, err := a.SendNodeMail(ctx, in)
		require.NoError(t, err)
		require.Equal(t, &nodestore.MailResult{Status: nodestore.MailSent, Recipients: 1, Refused: 1}, res)
		msgs, err := sink.Wait(ctx, 1)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, []string{"chef@" + node + ".test", staticCC}, msgs[0].Rcpt)
		require.Equal(t, []string{"chef@" + node + ".test", bad}, msgs[0].To, "the headers name everyone")
		require.Equal(t, activities.NodeMailMessageID(in.Key), msgs[0].MessageID)

		status, errText, rcpts := mailState(t, in.Key)
		require.Equal(t, "sent", status)
		require.Contains(t, errText, bad+": 550")
		require.Equal(t, []mailRecipient{
			{"chef@" + node + ".test", "sent", code(250)},
			{bad, "refused", code(550)},
			{staticCC, "sent", code(250)},
		}, rcpts)

		var warned bool
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec struct {
				Level, Msg, Node string
				Refused          int
			}
			require.NoError(t, json.Unmarshal([]byte(line), &rec))
			if rec.Node == node && rec.Level == "WARN" && strings.Contains(rec.Msg, "only some recipients") {
				require.Equal(t, 1, rec.Refused)
				warned = true
			}
		}
		require.True(t, warned, "a warning names the node and the refused count: %s", logs.String())

		// The node API shows the refused address.
		d, err := (&nodestore.Store{DB: db}).Detail(ctx, node, time.Now())
		require.NoError(t, err)
		require.Len(t, d.Mails, 1)
		require.Len(t, d.Mails[0].Refused, 1)
		r := d.Mails[0].Refused[0]
		require.Equal(t, bad, r.Address)
		require.True(t, r.Permanent)
		require.Equal(t, 550, *r.Code)
		require.Contains(t, r.Reply, "5.1.1")

		// A retried activity sends nothing, and counts nothing again.
		res, err = a.SendNodeMail(ctx, in)
		require.NoError(t, err)
		require.Equal(t, &nodestore.MailResult{Status: nodestore.MailSent, Recipients: 1, Refused: 1}, res)
		time.Sleep(100 * time.Millisecond)
		require.Len(t, sink.Messages(), 1)
		require.InDelta(t, 1, nodeMails(t, reg, "alert", "sent"), 0)
		require.InDelta(t, 1, value(t, reg.Nodes().RefusedRecipients), 0)
	})

	t.Run("a temporary refusal is retried for that address only", func(t *testing.T) {
		node := newNode(t)
		busy := "chef@" + node + ".test"
		sink, sender := startRefusingSink(t, map[string]int{busy: 450})
		// A display name in Cc: progress is matched on the bare address.
		reg := metrics.New()
		a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender, MailCC: []string{"AKTIN Monitor <" + staticCC + ">"}, Metrics: reg.Nodes()}
		in := request(node)

		// Two attempts while the server defers the address: the others get
		// the mail once.
		for attempt := range 2 {
			_, err := a.SendNodeMail(ctx, in)
			require.Error(t, err)
			var ae *temporal.ApplicationError
			require.False(t, errors.As(err, &ae) && ae.NonRetryable(), "attempt %d: a deferral is retried: %v", attempt, err)
			require.ErrorContains(t, err, "1 of 3 recipients deferred")
		}
		msgs, err := sink.Wait(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []string{"admin@" + node + ".test", staticCC}, msgs[0].Rcpt)
		require.Len(t, sink.Refusals(), 2, "the deferred address was tried again")
		status, errText, rcpts := mailState(t, in.Key)
		require.Equal(t, "sending", status)
		require.Contains(t, errText, busy+": 450")
		require.Equal(t, []mailRecipient{
			{busy, "deferred", code(450)},
			{"admin@" + node + ".test", "sent", code(250)},
			{staticCC, "sent", code(250)},
		}, rcpts)
		d, err := (&nodestore.Store{DB: db}).Detail(ctx, node, time.Now())
		require.NoError(t, err)
		require.Len(t, d.Mails[0].Refused, 1)
		require.False(t, d.Mails[0].Refused[0].Permanent, "deferred, still retried")

		// The server takes it now: only the deferred address gets the
		// mail, the same one.
		require.NoError(t, sink.SetRefusal(busy, 0))
		res, err := a.SendNodeMail(ctx, in)
		require.NoError(t, err)
		require.Equal(t, &nodestore.MailResult{Status: nodestore.MailSent, Recipients: 2}, res)
		msgs, err = sink.Wait(ctx, 2)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		require.Equal(t, []string{busy}, msgs[1].Rcpt)
		require.Equal(t, msgs[0].MessageID, msgs[1].MessageID)
		require.Equal(t, msgs[0].To, msgs[1].To)
		status, errText, rcpts = mailState(t, in.Key)
		require.Equal(t, "sent", status)
		require.Empty(t, errText)
		require.InDelta(t, 2, nodeMails(t, reg, "alert", "retried"), 0)
		require.InDelta(t, 1, nodeMails(t, reg, "alert", "sent"), 0)
		require.InDelta(t, 0, value(t, reg.Nodes().RefusedRecipients), 0)
		for _, r := range rcpts {
			require.Equal(t, "sent", r.Status, r.Address)
		}
		time.Sleep(100 * time.Millisecond)
		require.Len(t, sink.Messages(), 2, "nobody got it twice")
	})

	t.Run("an address deferred for longer than the limit counts as refused", func(t *testing.T) {
		node := newNode(t)
		busy := "chef@" + node + ".test"
		sink, sender := startRefusingSink(t, map[string]int{busy: 452})
		a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender, MailCC: []string{staticCC}}
		in := request(node)
		_, err := a.SendNodeMail(ctx, in)
		require.ErrorContains(t, err, "deferred")
		_, err = db.Exec(`UPDATE node_mail_recipients SET first_deferred_at = now() - $2::interval
			WHERE mail_id = (SELECT id FROM node_mail_log WHERE key = $1) AND status = 'deferred'`,
			in.Key, (activities.NodeMailDeferLimit + time.Hour).String())
		require.NoError(t, err)
		res, err := a.SendNodeMail(ctx, in)
		require.NoError(t, err)
		require.Equal(t, &nodestore.MailResult{Status: nodestore.MailSent, Recipients: 1, Refused: 1}, res)
		status, _, rcpts := mailState(t, in.Key)
		require.Equal(t, "sent", status)
		require.Equal(t, mailRecipient{busy, "refused", code(452)}, rcpts[0])
		require.Len(t, sink.Messages(), 1)
	})

	t.Run("every address refused: failed, not retried", func(t *testing.T) {
		node := newNode(t)
		sink, sender := startRefusingSink(t, map[string]int{"chef@" + node + ".test": 550, "admin@" + node + ".test": 553, staticCC: 550})
		a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender, MailCC: []string{staticCC}}
		in := request(node)
		_, err := a.SendNodeMail(ctx, in)
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae), "%v", err)
		require.Equal(t, activities.ErrTypeMailPermanent, ae.Type())
		require.True(t, ae.NonRetryable())
		status, errText, rcpts := mailState(t, in.Key)
		require.Equal(t, "failed", status)
		require.Contains(t, errText, "admin@"+node+".test: 553")
		require.Len(t, rcpts, 3)
		for _, r := range rcpts {
			require.Equal(t, "refused", r.Status)
		}
		time.Sleep(100 * time.Millisecond)
		require.Empty(t, sink.Messages())
	})

	t.Run("an address that cannot be mailed is refused, the others get the mail", func(t *testing.T) {
		node := newNodeID()
		addContact(t, node, "ED", "chef@"+node+".test", true, false)
		addContact(t, node, "IT", "not an address", false, false)
		sink, sender := startRefusingSink(t, nil)
		a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender}
		in := request(node)
		res, err := a.SendNodeMail(ctx, in)
		require.NoError(t, err)
		require.Equal(t, &nodestore.MailResult{Status: nodestore.MailSent, Recipients: 1, Refused: 1}, res)
		msgs, err := sink.Wait(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []string{"chef@" + node + ".test"}, msgs[0].To)
		_, _, rcpts := mailState(t, in.Key)
		require.Equal(t, []mailRecipient{{"chef@" + node + ".test", "sent", code(250)}, {"not an address", "refused", nil}}, rcpts)
	})
}

// nodeMails is vigil_node_mails_total of a kind and outcome.
func nodeMails(t *testing.T, reg *metrics.Registry, kind, outcome string) float64 {
	t.Helper()
	return value(t, reg.Nodes().Mails.WithLabelValues(kind, outcome))
}

// value is a counter's value.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
