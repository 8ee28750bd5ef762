//go:build integration

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/message"
)

// resumableStream is an SSE stream a test can drop, as a client whose
// connection breaks.
type resumableStream struct {
	events <-chan sseEvent
	close  func()
}

// openResumable opens path with the token and, when set, a Last-Event-ID
// header.
func (s *stack) openResumable(t *testing.T, path, token, lastEventID string) resumableStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan sseEvent, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			case line == "" && ev.Event != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	stop := func() {
		cancel()
		_ = resp.Body.Close()
	}
	t.Cleanup(stop)
	return resumableStream{events: events, close: stop}
}

// readIDs reads n events of kind and returns the ids in their data, and the
// last event id; then it requires that nothing more comes.
func readIDs(t *testing.T, st resumableStream, kind string, n int) (ids []string, lastEventID string) {
	t.Helper()
	for range n {
		ev := nextEvent(t, st.events)
		require.Equal(t, kind, ev.Event)
		var v struct {
			ID json.RawMessage `json:"id"`
		}
		require.NoError(t, json.Unmarshal([]byte(ev.Data), &v))
		ids = append(ids, strings.Trim(string(v.ID), `"`))
		lastEventID = ev.ID
	}
	select {
	case ev := <-st.events:
		t.Fatalf("unexpected event %+v after %v", ev, ids)
	case <-time.After(300 * time.Millisecond):
	}
	return ids, lastEventID
}

func TestReliability_Streams_MessagesResumeFromLastEventID(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	path := "/v1/receivers/" + p.P + "/messages/stream"
	send := func(typ int, content string) string {
		return s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, typ, content)).ID
	}

	// Committed just before the stream opens: delivered.
	early := send(0, "just before the stream opened")
	patient := s.openResumable(t, path, tk.P, "")
	clinician := s.openResumable(t, path, tk.C, "")
	m1, m2 := send(1, "one"), send(0, "two")
	got, patientLast := readIDs(t, patient, "message", 3)
	require.Equal(t, []string{early, m1, m2}, got)
	got, clinicianLast := readIDs(t, clinician, "message", 3)
	require.Equal(t, []string{early, m1, m2}, got)

	// Both drop; messages arrive while they are away, an alert among them.
	patient.close()
	clinician.close()
	m3, red, m4 := send(0, "three"), send(7, "RED while away"), send(2, "four")

	// Resuming gets exactly what was missed, in order; the patient never the alert.
	patient = s.openResumable(t, path, tk.P, patientLast)
	got, _ = readIDs(t, patient, "message", 2)
	require.Equal(t, []string{m3, m4}, got)
	clinician = s.openResumable(t, path+"?last_event_id="+clinicianLast, tk.C, "")
	got, _ = readIDs(t, clinician, "message", 3)
	require.Equal(t, []string{m3, red, m4}, got)

	// And then the new ones, live.
	m5 := send(0, "five")
	got, _ = readIDs(t, patient, "message", 1)
	require.Equal(t, []string{m5}, got)
	got, _ = readIDs(t, clinician, "message", 1)
	require.Equal(t, []string{m5}, got)

	// An event id sent before stream positions existed (the message id) resumes too.
	legacy := s.openResumable(t, path, tk.C, m4)
	got, _ = readIDs(t, legacy, "message", 1)
	require.Equal(t, []string{m5}, got)

	for _, tt := range []struct{ header, query, field string }{
		{"soon", "", "Last-Event-ID"},
		{"-1", "", "Last-Event-ID"},
		{"", "x", "last_event_id"},
		{"00000000-0000-7000-8000-000000000000", "", "Last-Event-ID"},
	} {
		req, err := http.NewRequest("GET", s.URL+path+"?last_event_id="+tt.query, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tk.C)
		if tt.header != "" {
			req.Header.Set("Last-Event-ID", tt.header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var e api.ErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, tt)
		require.Equal(t, tt.field, e.Error.Field, tt)
	}
}

// TestReliability_Streams_MessagesCommitOrder holds one message's
// transaction open while a later one commits: the stream must not pass the
// held one by (a plain sequence would, and a resume after the later one
// would lose it).
func TestReliability_Streams_MessagesCommitOrder(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	path := "/v1/receivers/" + p.P + "/messages/stream"
	st := s.openResumable(t, path, tk.C, "")

	// A writer that has drawn its number but not committed yet.
	tx, err := env.DB.Beginx()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.Exec(`SELECT pg_advisory_xact_lock(1297303379, hashtext($1))`, p.P)
	require.NoError(t, err)
	held := "0190d5d2-0000-7000-8000-" + strings.Repeat("0", 4) + p.P[1:9]
	_, err = tx.Exec(`INSERT INTO messages (id, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type, type, content)
		VALUES ($1, 'test', 'system', $2, 'location', $3, 'patient', 0, 'held')`, held, p.L1, p.P)
	require.NoError(t, err)

	later := make(chan string, 1)
	go func() {
		var m message.Message
		resp := s.call(t, "POST", "/v1/messages", tk.C, msgBody("location", p.L1, "patient", p.P, 0, "later"), &m)
		if resp.StatusCode == http.StatusCreated {
			later <- m.ID
		}
		close(later)
	}()
	select {
	case ev := <-st.events:
		t.Fatalf("the later message went by the held one: %+v", ev)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, tx.Commit())
	id := <-later
	got, last := readIDs(t, st, "message", 2)
	require.Equal(t, []string{held, id}, got)
	n, err := strconv.ParseInt(last, 10, 64)
	require.NoError(t, err)
	require.Positive(t, n)
}

func TestReliability_Streams_NotificationsResumeFromLastEventID(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "a01")
	var staffID string
	require.NoError(t, env.DB.Get(&staffID, `SELECT id FROM staff WHERE login = 'a01'`))
	_, err := env.DB.Exec(`UPDATE staff_notifications SET read_at = now() WHERE staff_id = $1`, staffID)
	require.NoError(t, err)
	notify := func(title string) string {
		var id int64
		require.NoError(t, env.DB.Get(&id, `INSERT INTO staff_notifications (staff_id, kind, title, body)
			VALUES ($1, 'test', $2, 'body') RETURNING id`, staffID, title))
		_, err := env.DB.Exec(`SELECT pg_notify('staff_notifications', $1)`, staffID)
		require.NoError(t, err)
		return strconv.FormatInt(id, 10)
	}
	path := "/v1/me/notifications/stream"

	early := notify("just before the stream opened")
	st := s.openResumable(t, path, token, "")
	n1 := notify("one")
	got, last := readIDs(t, st, "notification", 2)
	require.Equal(t, []string{early, n1}, got)

	st.close()
	n2, n3 := notify("two"), notify("three")
	st = s.openResumable(t, path+"?last_event_id="+last, token, "")
	got, last = readIDs(t, st, "notification", 2)
	require.Equal(t, []string{n2, n3}, got)
	st.close()
	n4 := notify("four")
	st = s.openResumable(t, path, token, last)
	got, _ = readIDs(t, st, "notification", 1)
	require.Equal(t, []string{n4}, got)

	status, e := s.errorOf(t, "GET", path+"?last_event_id=x", token, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "last_event_id", e.Field)
}
