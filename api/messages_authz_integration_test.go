//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/message"
)

// authzCase is one row of an authorisation matrix: a caller doing one
// request, the status it must get and, for lists, exactly which fixture
// messages it must see (by name); for refusals, the field named.
type authzCase struct {
	name         string
	token        string
	method, path string
	body         string
	status       int
	see          []string // nil: not checked; empty: nothing
	field        string
}

// do sends the request and returns the status and body; an event stream is
// closed as soon as its headers arrive.
func (s *stack) authzDo(t *testing.T, c authzCase) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, s.URL+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, nil
	}
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

func (s *stack) runAuthz(t *testing.T, cases []authzCase, names map[string]string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, raw := s.authzDo(t, c)
			require.Equal(t, c.status, status, string(raw))
			if c.status >= 400 {
				var e api.ErrorBody
				require.NoError(t, json.Unmarshal(raw, &e), string(raw))
				require.Equal(t, c.field, e.Error.Field, e.Error.Message)
				return
			}
			if c.see == nil {
				return
			}
			got := []string{}
			switch {
			case strings.HasPrefix(string(raw), `{"items"`):
				var page api.MessagePage
				require.NoError(t, json.Unmarshal(raw, &page))
				for _, m := range page.Items {
					got = append(got, names[m.ID])
				}
			case c.method == "GET" && strings.HasPrefix(c.path, "/v1/messages/"):
				var m message.Message
				require.NoError(t, json.Unmarshal(raw, &m))
				got = []string{names[m.ID]}
			default: // active callbacks: patient id -> message
				var byPatient map[string]message.Message
				require.NoError(t, json.Unmarshal(raw, &byPatient))
				for _, m := range byPatient {
					got = append(got, names[m.ID])
				}
			}
			slices.Sort(got)
			want := slices.Clone(c.see)
			slices.Sort(want)
			require.Equal(t, want, got)
		})
	}
}

// TestMessageAuthzReads is the authorisation matrix of every reading
// endpoint: by id, every list, active callbacks and the stream, for each
// kind of caller, including every refused case.
func TestMessageAuthzReads(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	names := map[string]string{}
	ids := map[string]string{}
	fixture := func(name, st, sid, rt, rid string, typ int) {
		m := s.send(t, tk.System, msgBody(st, sid, rt, rid, typ, name))
		names[m.ID], ids[name] = name, m.ID
	}
	fixture("pToL1", "patient", p.P, "location", p.L1, 0)
	fixture("pToL1cb", "patient", p.P, "location", p.L1, 5)
	fixture("l1ToPcb", "location", p.L1, "patient", p.P, 5)
	fixture("l1ToPred", "location", p.L1, "patient", p.P, 7)
	fixture("l1ToPamber", "location", p.L1, "patient", p.P, 8)
	fixture("l1ToPgrey", "location", p.L1, "patient", p.P, 9)
	fixture("l1ToPclear", "location", p.L1, "patient", p.P, 10)
	fixture("p2ToL2cb", "patient", p.P2, "location", p.L2, 5)
	fixture("c2ToL2", "clinician", p.C2, "location", p.L2, 0)
	fixture("cToC2", "clinician", p.C, "clinician", p.C2, 1)
	patientSees := []string{"pToL1", "pToL1cb", "l1ToPcb", "l1ToPclear"}
	pAll := append(slices.Clone(patientSees), "l1ToPred", "l1ToPamber", "l1ToPgrey")

	get := func(name string) string { return "/v1/messages/" + ids[name] }
	none := []string{}
	cases := []authzCase{
		// By id.
		{name: "patient gets its own", token: tk.P, method: "GET", path: get("pToL1"), status: 200, see: []string{"pToL1"}},
		{name: "patient gets a callback to it", token: tk.P, method: "GET", path: get("l1ToPcb"), status: 200, see: []string{"l1ToPcb"}},
		{name: "patient never gets a red alert", token: tk.P, method: "GET", path: get("l1ToPred"), status: 404},
		{name: "patient never gets an amber alert", token: tk.P, method: "GET", path: get("l1ToPamber"), status: 404},
		{name: "patient never gets a grey alert", token: tk.P, method: "GET", path: get("l1ToPgrey"), status: 404},
		{name: "patient gets clear alerts", token: tk.P, method: "GET", path: get("l1ToPclear"), status: 200, see: []string{"l1ToPclear"}},
		{name: "other patient gets 404", token: tk.P2, method: "GET", path: get("pToL1"), status: 404},
		{name: "patient gets no clinician message", token: tk.P, method: "GET", path: get("cToC2"), status: 404},
		{name: "clinician gets its own", token: tk.C, method: "GET", path: get("cToC2"), status: 200, see: []string{"cToC2"}},
		{name: "clinician gets a patient's alert", token: tk.C, method: "GET", path: get("l1ToPred"), status: 200, see: []string{"l1ToPred"}},
		{name: "clinician gets any patient's", token: tk.C, method: "GET", path: get("p2ToL2cb"), status: 200, see: []string{"p2ToL2cb"}},
		{name: "clinician non-member gets 404", token: tk.C, method: "GET", path: get("c2ToL2"), status: 404},
		{name: "location member gets it", token: tk.C2, method: "GET", path: get("c2ToL2"), status: 200, see: []string{"c2ToL2"}},
		{name: "receiving clinician gets it", token: tk.C2, method: "GET", path: get("cToC2"), status: 200, see: []string{"cToC2"}},
		{name: "system gets anything", token: tk.System, method: "GET", path: get("c2ToL2"), status: 200, see: []string{"c2ToL2"}},
		{name: "missing id", token: tk.System, method: "GET", path: "/v1/messages/00000000-0000-4000-8000-000000000000", status: 404},

		// By sender.
		{name: "patient lists what it sent", token: tk.P, method: "GET", path: "/v1/senders/" + p.P + "/messages", status: 200, see: []string{"pToL1", "pToL1cb"}},
		{name: "patient lists sent, as patient type", token: tk.P, method: "GET", path: "/v1/senders/" + p.P + "/messages?type=patient&active=true", status: 200, see: []string{"pToL1", "pToL1cb"}},
		{name: "patient lists sent as a location: none", token: tk.P, method: "GET", path: "/v1/senders/" + p.P + "/messages?type=location", status: 200, see: none},
		{name: "patient cannot list another sender", token: tk.P, method: "GET", path: "/v1/senders/" + p.P2 + "/messages", status: 403, field: "id"},
		{name: "patient cannot list a location", token: tk.P, method: "GET", path: "/v1/senders/" + p.L1 + "/messages", status: 403, field: "id"},
		{name: "clinician lists its location's", token: tk.C, method: "GET", path: "/v1/senders/" + p.L1 + "/messages", status: 200, see: []string{"l1ToPcb", "l1ToPred", "l1ToPamber", "l1ToPgrey", "l1ToPclear"}},
		{name: "clinician lists another clinician's: only visible", token: tk.C, method: "GET", path: "/v1/senders/" + p.C2 + "/messages", status: 200, see: none},
		{name: "member lists its clinician's", token: tk.C2, method: "GET", path: "/v1/senders/" + p.C2 + "/messages", status: 200, see: []string{"c2ToL2"}},
		{name: "system lists anyone's", token: tk.System, method: "GET", path: "/v1/senders/" + p.C2 + "/messages", status: 200, see: []string{"c2ToL2"}},

		// By receiver.
		{name: "patient lists what it received, no alerts", token: tk.P, method: "GET", path: "/v1/receivers/" + p.P + "/messages", status: 200, see: []string{"l1ToPcb", "l1ToPclear"}},
		{name: "patient cannot list another receiver", token: tk.P, method: "GET", path: "/v1/receivers/" + p.P2 + "/messages", status: 403, field: "id"},
		{name: "clinician lists a patient's, with alerts", token: tk.C, method: "GET", path: "/v1/receivers/" + p.P + "/messages", status: 200, see: []string{"l1ToPcb", "l1ToPred", "l1ToPamber", "l1ToPgrey", "l1ToPclear"}},
		{name: "clinician non-member sees only patients' messages to a location", token: tk.C, method: "GET", path: "/v1/receivers/" + p.L2 + "/messages", status: 200, see: []string{"p2ToL2cb"}},
		{name: "member sees all its location's", token: tk.C2, method: "GET", path: "/v1/receivers/" + p.L2 + "/messages", status: 200, see: []string{"p2ToL2cb", "c2ToL2"}},
		{name: "clinician lists the clinician it wrote to", token: tk.C, method: "GET", path: "/v1/receivers/" + p.C2 + "/messages", status: 200, see: []string{"cToC2"}},
		{name: "active to the patient", token: tk.System, method: "GET", path: "/v1/receivers/" + p.P + "/messages?active=true&type=patient", status: 200, see: []string{"l1ToPcb", "l1ToPred", "l1ToPamber", "l1ToPgrey", "l1ToPclear"}},

		// Pair.
		{name: "patient lists a pair it is in", token: tk.P, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages", status: 200, see: []string{"l1ToPcb", "l1ToPclear"}},
		{name: "patient lists its active pair", token: tk.P, method: "GET", path: "/v1/senders/" + p.P + "/receivers/" + p.L1 + "/messages?active=true", status: 200, see: []string{"pToL1", "pToL1cb"}},
		{name: "patient cannot list another's pair", token: tk.P, method: "GET", path: "/v1/senders/" + p.P2 + "/receivers/" + p.L2 + "/messages", status: 403, field: "id"},
		{name: "other patient cannot list the pair", token: tk.P2, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages", status: 403, field: "id"},
		{name: "clinician lists a patient pair", token: tk.C, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages?sender_type=location&receiver_type=patient", status: 200, see: []string{"l1ToPcb", "l1ToPred", "l1ToPamber", "l1ToPgrey", "l1ToPclear"}},
		{name: "pair with the wrong sender type", token: tk.C, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages?sender_type=clinician", status: 200, see: none},
		{name: "clinician non-member pair: nothing", token: tk.C, method: "GET", path: "/v1/senders/" + p.C2 + "/receivers/" + p.L2 + "/messages", status: 200, see: none},
		{name: "active pair: only the pair", token: tk.C2, method: "GET", path: "/v1/senders/" + p.C2 + "/receivers/" + p.L2 + "/messages?active=true", status: 200, see: []string{"c2ToL2"}},
		{name: "pair bad receiver id", token: tk.C, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/a%20b/messages", status: 400, field: "receiver_id"},
		{name: "pair bad sender type", token: tk.C, method: "GET", path: "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages?sender_type=x", status: 400, field: "sender_type"},

		// Sender or receiver.
		{name: "patient lists its party messages", token: tk.P, method: "GET", path: "/v1/parties/" + p.P + "/messages", status: 200, see: patientSees},
		{name: "patient cannot list another party", token: tk.P, method: "GET", path: "/v1/parties/" + p.P2 + "/messages", status: 403, field: "id"},
		{name: "clinician lists a patient's party messages", token: tk.C, method: "GET", path: "/v1/parties/" + p.P + "/messages", status: 200, see: pAll},
		{name: "clinician lists another clinician: only shared", token: tk.C, method: "GET", path: "/v1/parties/" + p.C2 + "/messages", status: 200, see: []string{"cToC2"}},
		{name: "clinician lists itself", token: tk.C, method: "GET", path: "/v1/parties/" + p.C + "/messages", status: 200, see: []string{"cToC2"}},
		{name: "other clinician lists itself", token: tk.C2, method: "GET", path: "/v1/parties/" + p.C2 + "/messages", status: 200, see: []string{"cToC2", "c2ToL2"}},
		{name: "clinician lists its location", token: tk.C, method: "GET", path: "/v1/parties/" + p.L1 + "/messages", status: 200, see: []string{"pToL1", "pToL1cb", "l1ToPcb", "l1ToPred", "l1ToPamber", "l1ToPgrey", "l1ToPclear"}},
		{name: "clinician lists a foreign location", token: tk.C, method: "GET", path: "/v1/parties/" + p.L2 + "/messages", status: 200, see: []string{"p2ToL2cb"}},
		{name: "system lists a party", token: tk.System, method: "GET", path: "/v1/parties/" + p.L2 + "/messages", status: 200, see: []string{"p2ToL2cb", "c2ToL2"}},
		{name: "party of a type", token: tk.System, method: "GET", path: "/v1/parties/" + p.P + "/messages?type=location", status: 200, see: none},

		// Active callbacks.
		{name: "patient lists callbacks to it", token: tk.P, method: "GET", path: "/v1/receivers/" + p.P + "/callbacks", status: 200, see: []string{"l1ToPcb"}},
		{name: "patient cannot list a location's callbacks", token: tk.P, method: "GET", path: "/v1/receivers/" + p.L1 + "/callbacks", status: 403, field: "id"},
		{name: "member lists callbacks to its location", token: tk.C, method: "GET", path: "/v1/receivers/" + p.L1 + "/callbacks", status: 200, see: []string{"pToL1cb"}},
		{name: "non-member sees patients' callbacks", token: tk.C, method: "GET", path: "/v1/receivers/" + p.L2 + "/callbacks", status: 200, see: []string{"p2ToL2cb"}},
		{name: "callbacks for patients (clinician)", token: tk.C, method: "POST", path: "/v1/callbacks/active", body: `["` + p.P + `","` + p.P2 + `"]`, status: 200, see: []string{"pToL1cb", "p2ToL2cb"}},
		{name: "callbacks for itself (patient)", token: tk.P, method: "POST", path: "/v1/callbacks/active", body: `["` + p.P + `"]`, status: 200, see: []string{"pToL1cb"}},
		{name: "callbacks for another patient (patient)", token: tk.P, method: "POST", path: "/v1/callbacks/active", body: `["` + p.P + `","` + p.P2 + `"]`, status: 403, field: "id"},
		{name: "callbacks for patients (system)", token: tk.System, method: "POST", path: "/v1/callbacks/active", body: `["` + p.P2 + `"]`, status: 200, see: []string{"p2ToL2cb"}},
		{name: "callbacks for none", token: tk.System, method: "POST", path: "/v1/callbacks/active", body: `[]`, status: 200, see: none},

		// Stream.
		{name: "patient streams its own", token: tk.P, method: "GET", path: "/v1/receivers/" + p.P + "/messages/stream", status: 200},
		{name: "patient cannot stream another's", token: tk.P, method: "GET", path: "/v1/receivers/" + p.P2 + "/messages/stream", status: 403, field: "id"},
		{name: "patient cannot stream a location", token: tk.P, method: "GET", path: "/v1/receivers/" + p.L1 + "/messages/stream", status: 403, field: "id"},
		{name: "clinician streams its location", token: tk.C, method: "GET", path: "/v1/receivers/" + p.L1 + "/messages/stream", status: 200},
		{name: "clinician streams a patient", token: tk.C, method: "GET", path: "/v1/receivers/" + p.P + "/messages/stream", status: 200},
		{name: "system streams", token: tk.System, method: "GET", path: "/v1/receivers/" + p.C2 + "/messages/stream", status: 200},
		{name: "stream token in the query", method: "GET", path: "/v1/receivers/" + p.P + "/messages/stream?access_token=" + tk.P, status: 200},
		{name: "stream bad type", token: tk.C, method: "GET", path: "/v1/receivers/" + p.P + "/messages/stream?type=x", status: 400, field: "type"},
	}

	// Every reading endpoint refuses callers without a usable token.
	endpoints := []struct{ method, path, body string }{
		{"GET", get("pToL1"), ""},
		{"GET", "/v1/senders/" + p.P + "/messages", ""},
		{"GET", "/v1/receivers/" + p.P + "/messages", ""},
		{"GET", "/v1/senders/" + p.L1 + "/receivers/" + p.P + "/messages", ""},
		{"GET", "/v1/parties/" + p.P + "/messages", ""},
		{"GET", "/v1/receivers/" + p.P + "/callbacks", ""},
		{"POST", "/v1/callbacks/active", `["` + p.P + `"]`},
		{"GET", "/v1/receivers/" + p.P + "/messages/stream", ""},
	}
	for _, e := range endpoints {
		for _, r := range []struct {
			who, token string
			status     int
		}{
			{"no token", "", 401},
			{"bad token", "not.a.jwt", 401},
			{"device", tk.Device, 403},
			{"staff", tk.Staff, 403},
			{"patient without scope", tk.PatientNoScope, 403},
		} {
			cases = append(cases, authzCase{name: r.who + " " + e.method + " " + e.path, token: r.token, method: e.method, path: e.path, body: e.body, status: r.status})
		}
	}
	s.runAuthz(t, cases, names)
}

// TestMessageAuthzWrites is the authorisation matrix of create and PATCH.
func TestMessageAuthzWrites(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	tk := s.msgTokens(t, p)
	names := map[string]string{}
	// Each PATCH row changes a message of its own.
	fresh := func(st, sid, rt, rid string, typ int) string {
		m := s.send(t, tk.System, msgBody(st, sid, rt, rid, typ, "x"))
		return "/v1/messages/" + m.ID
	}
	toP := func() string { return fresh("location", p.L1, "patient", p.P, 5) }
	fromP := func() string { return fresh("patient", p.P, "location", p.L1, 5) }
	fromPtoL2 := func() string { return fresh("patient", p.P, "location", p.L2, 5) }
	c2ToL2 := func() string { return fresh("clinician", p.C2, "location", p.L2, 0) }
	redToP := func() string { return fresh("location", p.L1, "patient", p.P, 7) }
	const at = `"2026-05-01T12:00:00Z"`
	retrieved := `{"retrieved":` + at + `}`
	confirmed := `{"confirmed":` + at + `}`
	cancelled := `{"cancelled":` + at + `}`
	related := func() string {
		m := s.send(t, tk.System, msgBody("patient", p.P, "location", p.L1, 0, "rel"))
		return `{"related_message":"` + m.ID + `"}`
	}

	cases := []authzCase{
		// Create.
		{name: "patient sends as itself to a location", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L1, 5, "x"), status: 201},
		{name: "patient sends to any location", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L2, 0, "x"), status: 201},
		{name: "patient sends as another patient", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P2, "location", p.L1, 0, "x"), status: 403, field: "sender_id"},
		{name: "patient sends as a location", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("location", p.L1, "patient", p.P, 0, "x"), status: 403, field: "sender_type"},
		{name: "patient sends to a clinician", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "clinician", p.C, 0, "x"), status: 403, field: "receiver_type"},
		{name: "patient sends to a patient", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "patient", p.P2, 0, "x"), status: 403, field: "receiver_type"},
		{name: "patient sends a red alert", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L1, 7, "x"), status: 403, field: "message_type.value"},
		{name: "patient sends an activation code", token: tk.P, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L1, 6, "x"), status: 403, field: "message_type.value"},
		{name: "read-only patient cannot send", token: tk.PatientReadOnly, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L1, 0, "x"), status: 403},
		{name: "clinician sends as itself", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("clinician", p.C, "patient", p.P2, 1, "x"), status: 201},
		{name: "clinician sends as its location", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("location", p.L1, "patient", p.P, 7, "x"), status: 201},
		{name: "clinician sends as a foreign location", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("location", p.L2, "patient", p.P, 0, "x"), status: 403, field: "sender_id"},
		{name: "clinician sends as another clinician", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("clinician", p.C2, "patient", p.P, 0, "x"), status: 403, field: "sender_id"},
		{name: "clinician sends as a patient", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("patient", p.P, "location", p.L1, 0, "x"), status: 403, field: "sender_type"},
		{name: "clinician sends as a system", token: tk.C, method: "POST", path: "/v1/messages", body: msgBody("system", p.C, "location", p.L1, 0, "x"), status: 403, field: "sender_type"},
		{name: "system sends as anyone", token: tk.System, method: "POST", path: "/v1/messages", body: msgBody("clinician", p.C2, "clinician", p.C, 9, "x"), status: 201},

		// PATCH.
		{name: "receiver patient retrieves", token: tk.P, method: "PATCH", path: toP(), body: retrieved, status: 200},
		{name: "receiver patient confirms", token: tk.P, method: "PATCH", path: toP(), body: confirmed, status: 200},
		{name: "receiver patient confirms as another", token: tk.P, method: "PATCH", path: toP(), body: `{"confirmed":` + at + `,"confirmed_by":"` + p.P2 + `"}`, status: 403, field: "confirmed_by"},
		{name: "receiver patient cannot cancel", token: tk.P, method: "PATCH", path: toP(), body: cancelled, status: 403, field: "cancelled"},
		{name: "sender patient cancels", token: tk.P, method: "PATCH", path: fromP(), body: `{"cancelled":` + at + `,"cancelled_by":"` + p.P + `"}`, status: 200},
		{name: "sender patient cannot confirm", token: tk.P, method: "PATCH", path: fromP(), body: confirmed, status: 403, field: "confirmed"},
		{name: "sender patient cannot mark retrieved", token: tk.P, method: "PATCH", path: fromP(), body: retrieved, status: 403, field: "retrieved"},
		{name: "sender patient links a message", token: tk.P, method: "PATCH", path: fromP(), body: related(), status: 200},
		{name: "patient cannot patch an alert", token: tk.P, method: "PATCH", path: redToP(), body: retrieved, status: 404},
		{name: "other patient cannot patch", token: tk.P2, method: "PATCH", path: toP(), body: retrieved, status: 404},
		{name: "read-only patient cannot patch", token: tk.PatientReadOnly, method: "PATCH", path: toP(), body: retrieved, status: 403},
		{name: "location member confirms", token: tk.C, method: "PATCH", path: fromP(), body: `{"confirmed":` + at + `,"confirmed_by":"` + p.C + `"}`, status: 200},
		{name: "location member cannot cancel the patient's", token: tk.C, method: "PATCH", path: fromP(), body: cancelled, status: 403, field: "cancelled"},
		{name: "location member cancels its location's", token: tk.C, method: "PATCH", path: toP(), body: cancelled, status: 200},
		{name: "non-member cannot confirm a patient's", token: tk.C, method: "PATCH", path: fromPtoL2(), body: confirmed, status: 403, field: "confirmed"},
		{name: "non-member cannot link a patient's", token: tk.C, method: "PATCH", path: fromPtoL2(), body: related(), status: 403, field: "related_message"},
		{name: "clinician cannot patch an invisible one", token: tk.C, method: "PATCH", path: c2ToL2(), body: retrieved, status: 404},
		{name: "member of the receiving location confirms", token: tk.C2, method: "PATCH", path: c2ToL2(), body: confirmed, status: 200},
		{name: "system confirms for anyone", token: tk.System, method: "PATCH", path: c2ToL2(), body: `{"confirmed":` + at + `,"confirmed_by":"anyone"}`, status: 200},
		{name: "system cancels anything", token: tk.System, method: "PATCH", path: toP(), body: cancelled, status: 200},
		{name: "forbidden field, even for system", token: tk.System, method: "PATCH", path: toP(), body: `{"content":"new"}`, status: 400, field: "content"},
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/v1/messages", msgBody("patient", p.P, "location", p.L1, 0, "x")},
		{"PATCH", toP(), retrieved},
	}
	for _, e := range writes {
		for _, r := range []struct {
			who, token string
			status     int
		}{
			{"no token", "", 401},
			{"device", tk.Device, 403},
			{"staff", tk.Staff, 403},
			{"patient without scope", tk.PatientNoScope, 403},
		} {
			cases = append(cases, authzCase{name: r.who + " " + e.method + " " + e.path, token: r.token, method: e.method, path: e.path, body: e.body, status: r.status})
		}
	}
	s.runAuthz(t, cases, names)
}
