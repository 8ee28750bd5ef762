//go:build integration

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/mail/mailsink"
	"github.com/vigil-health/vigil/workflows"
)

// outcome is what a scenario's checks found.
type outcome struct {
	lost, duplicated int
	// lastDelivery is when the last checked page was sent.
	lastDelivery time.Time
}

func (o *outcome) add(p outcome) {
	o.lost += p.lost
	o.duplicated += p.duplicated
	if p.lastDelivery.After(o.lastDelivery) {
		o.lastDelivery = p.lastDelivery
	}
}

// hashes maps the suite's dedup keys to the scoped hashes Postgres keeps.
func (s *stack) hashes(keys []string) (map[string]string, []string) {
	byHash := make(map[string]string, len(keys))
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		h := workflows.ScopedDedupKeyHash(s.integration, k)
		byHash[h] = k
		list = append(list, h)
	}
	return byHash, list
}

type incidentRow struct {
	ID         string `db:"id"`
	Hash       string `db:"dedup_key_hash"`
	AlertCount int    `db:"alert_count"`
}

func (s *stack) incidents(ctx context.Context, keys []string) ([]incidentRow, error) {
	_, list := s.hashes(keys)
	var rows []incidentRow
	err := s.db.SelectContext(ctx, &rows, `SELECT id, dedup_key_hash, alert_count FROM incidents WHERE dedup_key_hash = ANY($1)`, pq.StringArray(list))
	return rows, err
}

// checkAlerts waits (up to settle) for Postgres to show every alert the
// monitor had accepted, then counts: an accepted alert missing from its
// incident's count is lost, one counted twice is duplicated, and a key with
// two incidents is a duplicated incident. It returns the incident ids.
func (s *stack) checkAlerts(t *testing.T, m *monitor, keys []string, settle time.Duration) (outcome, []string) {
	t.Helper()
	ctx := context.Background()
	byHash, _ := s.hashes(keys)
	deadline := time.Now().Add(settle)
	var o outcome
	var ids []string
	for {
		rows, err := s.incidents(ctx, keys)
		if err != nil {
			// The database may still be coming back.
			time.Sleep(500 * time.Millisecond)
			continue
		}
		perKey := map[string][]incidentRow{}
		for _, r := range rows {
			perKey[byHash[r.Hash]] = append(perKey[byHash[r.Hash]], r)
		}
		o, ids = outcome{}, ids[:0]
		m.mu.Lock()
		for _, k := range keys {
			want := m.accepted[k]
			got := 0
			for _, r := range perKey[k] {
				got += r.AlertCount
				ids = append(ids, r.ID)
			}
			if n := len(perKey[k]); n > 1 {
				o.duplicated += n - 1
				fmt.Fprintf(os.Stderr, "chaos: key %s has %d incidents\n", k, n)
			}
			switch {
			case want == 0 && len(perKey[k]) == 0:
			case got < want:
				o.lost += want - got
			case got > want:
				o.duplicated += got - want
				fmt.Fprintf(os.Stderr, "chaos: key %s counted %d alerts, %d accepted\n", k, got, want)
			}
		}
		m.mu.Unlock()
		if (o.lost == 0 && o.duplicated == 0) || time.Now().After(deadline) {
			return o, ids
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pageCheck is one kind of page to check on a set of incidents.
type pageCheck struct {
	// steps are the outbox step names that count as this page (an
	// escalation step is "escalation-N" on time and "delayed-N" late).
	steps []string
	// sms also requires the SMS copy (every demo staff member has a number).
	sms bool
}

// checkPages waits (up to settle) until every incident has its page sent
// once, in-app and by SMS, and a Slack message; it counts what is missing
// (lost) and what was sent more than once (duplicated), including messages
// the SMS simulator received that the outbox does not know (a page sent
// twice). lastDelivery is the latest sent_at among the pages.
func (s *stack) checkPages(t *testing.T, ids []string, pc pageCheck, settle time.Duration) outcome {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(settle)
	for {
		o, err := s.pageOutcome(ctx, ids, pc)
		if err == nil && (o.lost == 0 || time.Now().After(deadline)) {
			return o
		}
		if err != nil && time.Now().After(deadline) {
			require.NoError(t, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *stack) pageOutcome(ctx context.Context, ids []string, pc pageCheck) (outcome, error) {
	var o outcome
	var rows []struct {
		IncidentID string     `db:"incident_id"`
		Channel    string     `db:"channel"`
		Pages      int        `db:"pages"`
		Sent       int        `db:"sent"`
		LastSent   *time.Time `db:"last_sent"`
	}
	err := s.db.SelectContext(ctx, &rows, `
		SELECT incident_id, channel, count(*) AS pages, count(*) FILTER (WHERE status = 'sent') AS sent, max(sent_at) AS last_sent
		FROM notification_outbox WHERE incident_id = ANY($1::uuid[]) AND step = ANY($2)
		GROUP BY incident_id, channel`, pq.StringArray(ids), pq.StringArray(pc.steps))
	if err != nil {
		return o, err
	}
	type key struct{ id, channel string }
	got := map[key]int{}
	for _, r := range rows {
		got[key{r.IncidentID, r.Channel}] = r.Sent
		if r.Pages > 1 {
			// Two steps named for the same due page (on time and late).
			o.duplicated += r.Pages - 1
			fmt.Fprintf(os.Stderr, "chaos: incident %s has %d %s outbox rows\n", r.IncidentID, r.Pages, r.Channel)
		}
		if r.LastSent != nil && r.LastSent.After(o.lastDelivery) {
			o.lastDelivery = *r.LastSent
		}
	}
	for _, id := range ids {
		if got[key{id, "inapp"}] == 0 {
			o.lost++
		}
		if pc.sms && got[key{id, "sms"}] == 0 {
			o.lost++
		}
	}
	// Every in-app page is one notification, never two.
	var twice int
	if err := s.db.GetContext(ctx, &twice, `
		SELECT count(*) FROM (SELECT 1 FROM staff_notifications n JOIN notification_outbox o ON o.id = n.outbox_id
		WHERE o.incident_id = ANY($1::uuid[]) AND o.step = ANY($2)
		GROUP BY o.incident_id, o.step, o.recipient HAVING count(*) > 1) d`, pq.StringArray(ids), pq.StringArray(pc.steps)); err != nil {
		return o, err
	}
	o.duplicated += twice
	if twice > 0 {
		fmt.Fprintf(os.Stderr, "chaos: %d pages notified twice\n", twice)
	}
	return o, nil
}

// checkSlack counts incidents without their one Slack message (lost) and
// extra messages for one incident (duplicated), from the simulator's log.
func (s *stack) checkSlack(ids []string, settle time.Duration) outcome {
	deadline := time.Now().Add(settle)
	for {
		per := map[string]int{}
		for _, m := range s.slack.Messages(slackChannel) {
			var md struct {
				EventPayload struct {
					IncidentID string `json:"incident_id"`
				} `json:"event_payload"`
			}
			if json.Unmarshal(m.Metadata, &md) == nil {
				per[md.EventPayload.IncidentID]++
			}
		}
		var o outcome
		for _, id := range ids {
			switch n := per[id]; {
			case n == 0:
				o.lost++
			case n > 1:
				o.duplicated += n - 1
				fmt.Fprintf(os.Stderr, "chaos: incident %s has %d Slack messages\n", id, n)
			}
		}
		if o.lost == 0 || time.Now().After(deadline) {
			return o
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// smsDuplicates is how many messages the SMS simulator accepted that the
// outbox does not know as a page's sent message (its SID is not a sent
// row's provider_ref): each is a page sent twice. A message accepted a
// moment before its row commits looks unknown for that moment, so the count
// is taken once it stops falling (up to 15 s).
func (s *stack) smsDuplicates(ctx context.Context) (int, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var known []string
		if err := s.db.SelectContext(ctx, &known, `SELECT provider_ref FROM notification_outbox WHERE channel = 'sms' AND status = 'sent'`); err != nil {
			return 0, err
		}
		seen := make(map[string]bool, len(known))
		for _, sid := range known {
			seen[sid] = true
		}
		unknown := 0
		for _, m := range s.sms.Messages() {
			if !seen[m.SID] {
				unknown++
			}
		}
		if unknown == 0 || time.Now().After(deadline) {
			return unknown, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func pqArray(ids []string) any { return pq.StringArray(ids) }

// checkNodeMails waits (up to settle) until every node e-mail Vigil decided
// to send is sent and received by the SMTP server, then counts mails not
// sent or never received (lost) and Message-IDs received more than once
// (duplicated). It returns the number of mails and when the last arrived.
func (s *stack) checkNodeMails(t *testing.T, sink *mailsink.Sink, settle time.Duration) (outcome, int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		var rows []struct {
			Status    string `db:"status"`
			MessageID string `db:"message_id"`
		}
		require.NoError(t, s.db.Select(&rows, `SELECT status, message_id FROM node_mail_log WHERE status <> 'no_recipients'`))
		received := map[string]int{}
		for _, m := range sink.Messages() {
			received[m.MessageID]++
		}
		var o outcome
		for _, r := range rows {
			if r.Status != "sent" || received["<"+strings.Trim(r.MessageID, "<>")+">"] == 0 {
				o.lost++
			}
		}
		for _, n := range received {
			o.duplicated += max(n-1, 0)
		}
		if (len(rows) > 0 && o.lost == 0) || time.Now().After(deadline) {
			return o, len(rows), time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}
