//go:build integration

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/message"
)

// msgParties are one test's party ids, unique to the test so tests sharing
// the database never see each other's messages.
type msgParties struct {
	P, P2, C, C2, L1, L2 string
}

func newMsgParties() msgParties {
	x := "M" + uuid.NewString()[:8] + "-"
	return msgParties{P: x + "P", P2: x + "P2", C: x + "C", C2: x + "C2", L1: x + "L1", L2: x + "L2"}
}

// token mints an access token with the stack's signer.
func (s *stack) token(t *testing.T, subType, sub string, locations []string, scopes ...string) string {
	t.Helper()
	c := auth.Claims{Subject: sub, SubjectType: subType, Scopes: scopes, LocationIDs: locations, TokenType: auth.TokenAccess}
	if subType == auth.SubjectStaff {
		c.Access = auth.AccessAdmin
	}
	tok, _, err := s.Signer.Issue(c, 10*time.Minute)
	require.NoError(t, err)
	return tok
}

// msgTokens are the callers of the message tests.
type msgTokens struct {
	P, P2, C, C2, System, Device, Staff, PatientReadOnly, PatientNoScope string
}

func (s *stack) msgTokens(t *testing.T, p msgParties) msgTokens {
	rw := []string{api.ScopeReadMessage, api.ScopeWriteMessage}
	return msgTokens{
		P:               s.token(t, auth.SubjectPatient, p.P, nil, rw...),
		P2:              s.token(t, auth.SubjectPatient, p.P2, nil, rw...),
		C:               s.token(t, auth.SubjectClinician, p.C, []string{p.L1}, rw...),
		C2:              s.token(t, auth.SubjectClinician, p.C2, []string{p.L2}, rw...),
		System:          s.token(t, auth.SubjectSystem, "test-system", nil, api.ScopeAll),
		Device:          s.token(t, auth.SubjectDevice, "D-"+p.L1, []string{p.L1}, api.ScopeAll),
		Staff:           s.login(t, "a01"), // a real staff session: staff tokens without one are refused before any route
		PatientReadOnly: s.token(t, auth.SubjectPatient, p.P, nil, api.ScopeReadMessage),
		PatientNoScope:  s.token(t, auth.SubjectPatient, p.P, nil),
	}
}

// msgBody is a create request body.
func msgBody(senderType, sender, receiverType, receiver string, typ int, content string) string {
	b, _ := json.Marshal(map[string]any{
		"sender_type": senderType, "sender_id": sender, "receiver_type": receiverType, "receiver_id": receiver,
		"message_type": map[string]int{"value": typ}, "content": content,
	})
	return string(b)
}

// send creates a message and returns it, requiring 201.
func (s *stack) send(t *testing.T, token, body string) message.Message {
	t.Helper()
	var m message.Message
	resp := s.call(t, "POST", "/v1/messages", token, body, &m)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	return m
}

// errorOf calls and decodes an error answer.
func (s *stack) errorOf(t *testing.T, method, path, token, body string) (int, api.ErrorDetail) {
	t.Helper()
	var e api.ErrorBody
	resp := s.call(t, method, path, token, body, &e)
	return resp.StatusCode, e.Error
}

func pageIDs(p api.MessagePage) []string {
	ids := make([]string, 0, len(p.Items))
	for _, m := range p.Items {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestMessageCreateAndGet(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	m := s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 5, "Please call me back\n\tabout my dose"))
	require.Equal(t, p.P, m.CreatedBy)
	require.Equal(t, "patient", m.CreatedByType)
	require.Equal(t, message.TypeRef{Value: 5, Name: "CALLBACK"}, m.MessageType)
	require.Nil(t, m.Confirmed)

	var got message.Message
	resp := s.call(t, "GET", "/v1/messages/"+m.ID, tk.C, "", &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, m.Content, got.Content)
	require.True(t, m.CreatedAt.Equal(got.CreatedAt))

	// A clinician acting as its location: created_by is the clinician.
	fromLoc := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 1, "Take 2 units"))
	require.Equal(t, p.C, fromLoc.CreatedBy)
	require.Equal(t, p.L1, fromLoc.SenderID)
}

func TestMessageCreateValidation(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	ok := func(edit func(map[string]any)) string {
		m := map[string]any{"sender_type": "system", "sender_id": "sys", "receiver_type": "patient", "receiver_id": p.P,
			"message_type": map[string]any{"value": 0}, "content": "hello"}
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"retired type 4", ok(func(m map[string]any) { m["message_type"] = map[string]any{"value": 4} }), 400, "message_type.value"},
		{"unknown type 11", ok(func(m map[string]any) { m["message_type"] = map[string]any{"value": 11} }), 400, "message_type.value"},
		{"type as a number", ok(func(m map[string]any) { m["message_type"] = 0 }), 400, "message_type"},
		{"type value a string", ok(func(m map[string]any) { m["message_type"] = map[string]any{"value": "0"} }), 400, "message_type.value"},
		{"type without value", ok(func(m map[string]any) { m["message_type"] = map[string]any{} }), 400, "message_type.value"},
		{"unknown field in type", ok(func(m map[string]any) { m["message_type"] = map[string]any{"value": 0, "uuid": "x"} }), 400, "uuid"},
		{"missing sender", ok(func(m map[string]any) { delete(m, "sender_id") }), 400, "sender_id"},
		{"bad receiver type", ok(func(m map[string]any) { m["receiver_type"] = "device" }), 400, "receiver_type"},
		{"empty receiver id", ok(func(m map[string]any) { m["receiver_id"] = "" }), 400, "receiver_id"},
		{"missing content", ok(func(m map[string]any) { delete(m, "content") }), 400, "content"},
		{"blank content", ok(func(m map[string]any) { m["content"] = "  \n" }), 400, "content"},
		{"NUL in content", ok(func(m map[string]any) { m["content"] = "a\x00b" }), 400, "content"},
		{"escape in content", ok(func(m map[string]any) { m["content"] = "\x1b[31mred" }), 400, "content"},
		{"content over 10 KiB", ok(func(m map[string]any) { m["content"] = strings.Repeat("x", 10*1024+1) }), 400, "content"},
		{"state on create", ok(func(m map[string]any) { m["confirmed"] = "2026-01-01T00:00:00Z" }), 400, "confirmed"},
		{"unknown field", ok(func(m map[string]any) { m["priority"] = 1 }), 400, "priority"},
		{"related not a uuid", ok(func(m map[string]any) { m["related_message"] = "abc" }), 400, "related_message"},
		{"related missing", ok(func(m map[string]any) { m["related_message"] = uuid.NewString() }), 400, "related_message"},
		{"internal not a bool", ok(func(m map[string]any) { m["internal"] = "yes" }), 400, "internal"},
		{"not an object", `[1]`, 400, ""},
		{"empty body", ``, 400, ""},
		{"two objects", `{}{}`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, e := s.errorOf(t, "POST", "/v1/messages", tk.System, tt.body)
			require.Equal(t, tt.status, status, e.Message)
			require.Equal(t, tt.field, e.Field, e.Message)
		})
	}
	t.Run("longest content", func(t *testing.T) {
		s.send(t, tk.System, ok(func(m map[string]any) { m["content"] = strings.Repeat("x", 10*1024) }))
	})
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.URL+"/v1/messages", strings.NewReader(ok(func(map[string]any) {})))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+tk.System)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	})
}

func TestMessagePatch(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	m := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 0, "Your results are in"))
	path := "/v1/messages/" + m.ID

	for _, field := range []string{"content", "sender_id", "sender_type", "receiver_id", "receiver_type", "message_type", "internal", "created_at", "id"} {
		t.Run("immutable "+field, func(t *testing.T) {
			status, e := s.errorOf(t, "PATCH", path, tk.System, `{"`+field+`": "x"}`)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, field, e.Field)
			require.Contains(t, e.Message, "cannot be changed")
		})
	}
	refusals := []struct{ name, body, field string }{
		{"unknown field", `{"colour": "red"}`, "colour"},
		{"null", `{"confirmed": null}`, "confirmed"},
		{"not a time", `{"retrieved": "yesterday"}`, "retrieved"},
		{"a number", `{"retrieved": 5}`, "retrieved"},
		{"bad by", `{"confirmed": "2026-01-01T00:00:00Z", "confirmed_by": "a b"}`, "confirmed_by"},
		{"by without time", `{"cancelled_by": "` + p.P + `"}`, "cancelled_by"},
		{"related to itself", `{"related_message": "` + m.ID + `"}`, "related_message"},
		{"related missing", `{"related_message": "` + uuid.NewString() + `"}`, "related_message"},
		{"empty object", `{}`, ""},
		{"empty body", ``, ""},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			status, e := s.errorOf(t, "PATCH", path, tk.System, tt.body)
			require.Equal(t, http.StatusBadRequest, status, e.Message)
			require.Equal(t, tt.field, e.Field, e.Message)
		})
	}

	// The receiver retrieves and confirms; confirmed_by defaults to it.
	var got message.Message
	resp := s.call(t, "PATCH", path, tk.P, `{"retrieved": "2026-03-01T10:00:00Z"}`, &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "2026-03-01T10:00:00Z", got.Retrieved.Format(time.RFC3339))
	resp = s.call(t, "PATCH", path, tk.P, `{"confirmed": "2026-03-01T10:05:00+01:00"}`, &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "2026-03-01T09:05:00Z", got.Confirmed.Format(time.RFC3339))
	require.Equal(t, p.P, *got.ConfirmedBy)
	require.Equal(t, "Your results are in", got.Content)
	// Set once: a second confirmation keeps the first.
	resp = s.call(t, "PATCH", path, tk.System, `{"confirmed": "2027-01-01T00:00:00Z", "confirmed_by": "someone"}`, &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "2026-03-01T09:05:00Z", got.Confirmed.Format(time.RFC3339))
	require.Equal(t, p.P, *got.ConfirmedBy)

	// related_message links a reply to the message; the sender links it.
	reply := s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 3, "Thanks"))
	resp = s.call(t, "PATCH", "/v1/messages/"+reply.ID, tk.P, `{"related_message": "`+strings.ToUpper(m.ID)+`"}`, &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, m.ID, *got.Related)
	// A message the patient cannot see is no related message for it.
	alert := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 7, "RED"))
	status, e := s.errorOf(t, "PATCH", "/v1/messages/"+reply.ID, tk.P, `{"related_message": "`+alert.ID+`"}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "related_message", e.Field)
	status, e = s.errorOf(t, "POST", "/v1/messages", tk.P, `{"sender_type":"patient","sender_id":"`+p.P+`","receiver_type":"location","receiver_id":"`+p.L1+
		`","message_type":{"value":0},"content":"re","related_message":"`+alert.ID+`"}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "related_message", e.Field)
	// Created with a related message it can see.
	var linked message.Message
	resp = s.call(t, "POST", "/v1/messages", tk.P, `{"sender_type":"patient","sender_id":"`+p.P+`","receiver_type":"location","receiver_id":"`+p.L1+
		`","message_type":{"value":0},"content":"re","related_message":"`+m.ID+`"}`, &linked)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, m.ID, *linked.Related)
}

// TestMessageActivePairDoesNotLeak is the seed's operator-precedence bug:
// the active pair list returned every unconfirmed message of anyone.
func TestMessageActivePairDoesNotLeak(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	pairUnconfirmed := s.send(t, tk.System, msgBody("location", p.L1, "patient", p.P, 0, "a"))
	pairCallback := s.send(t, tk.System, msgBody("location", p.L1, "patient", p.P, 5, "b"))
	s.call(t, "PATCH", "/v1/messages/"+pairCallback.ID, tk.System, `{"confirmed":"2026-01-01T00:00:00Z"}`, nil)
	pairConfirmed := s.send(t, tk.System, msgBody("location", p.L1, "patient", p.P, 0, "c"))
	s.call(t, "PATCH", "/v1/messages/"+pairConfirmed.ID, tk.System, `{"confirmed":"2026-01-01T00:00:00Z"}`, nil)
	s.send(t, tk.System, msgBody("location", p.L1, "patient", p.P2, 0, "other receiver"))
	s.send(t, tk.System, msgBody("location", p.L2, "patient", p.P, 0, "other sender"))
	s.send(t, tk.System, msgBody("location", p.L2, "patient", p.P2, 5, "other pair's callback"))
	s.send(t, tk.System, msgBody("patient", p.P, "location", p.L1, 0, "reversed"))

	for _, token := range []string{tk.System, tk.C, tk.P} {
		var page api.MessagePage
		resp := s.call(t, "GET", "/v1/senders/"+p.L1+"/receivers/"+p.P+"/messages?active=true", token, "", &page)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{pairCallback.ID, pairUnconfirmed.ID}, pageIDs(page))
	}
	var all api.MessagePage
	s.call(t, "GET", "/v1/senders/"+p.L1+"/receivers/"+p.P+"/messages", tk.System, "", &all)
	require.Equal(t, []string{pairConfirmed.ID, pairCallback.ID, pairUnconfirmed.ID}, pageIDs(all))
}

func TestMessagePagination(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	var want []string
	for i := range 120 {
		body := msgBody("location", p.L1, "patient", p.P, 0, fmt.Sprint(i))
		if i%2 == 1 {
			body = msgBody("patient", p.P, "location", p.L1, 0, fmt.Sprint(i))
		}
		m := s.send(t, tk.System, body)
		want = append([]string{m.ID}, want...)
	}
	for path, token := range map[string]string{"/v1/parties/" + p.P + "/messages": tk.P, "/v1/parties/" + p.L1 + "/messages": tk.C} {
		var got []string
		var prev *message.Message
		next := path + "?limit=25"
		pages := 0
		for {
			var page api.MessagePage
			resp := s.call(t, "GET", next, token, "", &page)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			pages++
			for i := range page.Items {
				m := &page.Items[i]
				if prev != nil {
					require.False(t, m.CreatedAt.After(prev.CreatedAt), "newest first")
				}
				prev = m
				got = append(got, m.ID)
			}
			if page.NextCursor == nil {
				break
			}
			next = path + "?limit=25&cursor=" + *page.NextCursor
		}
		require.Equal(t, want, got, "every message once, newest first")
		require.Equal(t, 5, pages)
	}
	var page api.MessagePage
	s.call(t, "GET", "/v1/senders/"+p.P+"/messages", tk.P, "", &page)
	require.Len(t, page.Items, 50, "default page size")
	require.NotNil(t, page.NextCursor)

	for _, q := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"}, {"cursor=abc", "cursor"},
		{"active=maybe", "active"}, {"type=device", "type"},
	} {
		status, e := s.errorOf(t, "GET", "/v1/parties/"+p.P+"/messages?"+q.query, tk.P, "")
		require.Equal(t, http.StatusBadRequest, status, q.query)
		require.Equal(t, q.field, e.Field, q.query)
	}
	status, e := s.errorOf(t, "GET", "/v1/parties/a%20b/messages", tk.System, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "id", e.Field)
	status, e = s.errorOf(t, "GET", "/v1/messages/not-a-uuid", tk.System, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "id", e.Field)
}

func TestMessageActiveCallbacks(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 5, "older"))
	newest := s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 5, "newest"))
	cancelled := s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 5, "cancelled"))
	s.call(t, "PATCH", "/v1/messages/"+cancelled.ID, tk.P, `{"cancelled":"2026-01-01T00:00:00Z"}`, nil)
	s.send(t, tk.P, msgBody("patient", p.P, "location", p.L1, 0, "not a callback"))
	other := s.send(t, tk.P2, msgBody("patient", p.P2, "location", p.L2, 5, "other"))

	var got map[string]message.Message
	resp := s.call(t, "POST", "/v1/callbacks/active", tk.C, `["`+p.P+`","`+p.P2+`","`+p.P+`","nobody"]`, &got)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, got, 2)
	require.Equal(t, newest.ID, got[p.P].ID)
	require.Equal(t, other.ID, got[p.P2].ID)

	var page api.MessagePage
	s.call(t, "GET", "/v1/receivers/"+p.L1+"/callbacks", tk.C, "", &page)
	require.Len(t, page.Items, 2, "older and newest; not the cancelled one, not the general one")

	for _, tt := range []struct{ body, field string }{{`{}`, ""}, {`[1]`, "[0]"}, {`["ok", "a b"]`, "[1]"}, {`null`, ""}} {
		status, e := s.errorOf(t, "POST", "/v1/callbacks/active", tk.C, tt.body)
		require.Equal(t, http.StatusBadRequest, status, tt.body)
		require.Equal(t, tt.field, e.Field, tt.body)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ ID, Event, Data string }

// openStream opens an SSE stream and returns its events; it closes when
// the test ends.
func (s *stack) openStream(t *testing.T, path, token string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := make(chan sseEvent, 100)
	connected := make(chan struct{})
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": connected":
				close(connected)
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
	t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
	})
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not connect")
	}
	return events
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		require.True(t, ok, "stream closed")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

func TestMessageStream(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	// Stored just before the stream opened: streams start a few seconds
	// back, so it is not missed.
	before := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 0, "before the stream opened"))
	patient := s.openStream(t, "/v1/receivers/"+p.P+"/messages/stream", tk.P)
	clinician := s.openStream(t, "/v1/receivers/"+p.P+"/messages/stream?type=patient", tk.C)

	first := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 1, "first"))
	red := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 7, "RED"))
	s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P2, 0, "someone else's"))
	last := s.send(t, tk.C, msgBody("location", p.L1, "patient", p.P, 0, "last"))

	ids := func(events <-chan sseEvent, n int) []string {
		var got []string
		for range n {
			ev := nextEvent(t, events)
			require.Equal(t, "message", ev.Event)
			var m message.Message
			require.NoError(t, json.Unmarshal([]byte(ev.Data), &m))
			require.NotEmpty(t, ev.ID, "the event id is the stream position")
			got = append(got, m.ID)
		}
		return got
	}
	require.Equal(t, []string{before.ID, first.ID, last.ID}, ids(patient, 3), "the patient stream never carries the alert")
	got := ids(clinician, 4)
	require.Equal(t, []string{before.ID, first.ID, red.ID, last.ID}, got)
	select {
	case ev := <-patient:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}
