//go:build integration

package api_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/message"
)

// TestConsoleMessages_ClinicianConversationsSendAndRights drives the
// Messages page without a browser: only a staff account that is a
// clinician (a clinician record with its staff id) gets the page and its
// nav link; it lists the conversations and active callbacks the JSON API
// shows that clinician; the send form is CSRF-checked, names the refused
// field inline with a 4xx, and a message it sends reaches the patient
// through the JSON API and the console's stream.
func TestConsoleMessages_ClinicianConversationsSendAndRights(t *testing.T) {
	s := startStack(t)
	p := newMsgParties()
	rw := []string{api.ScopeReadMessage, api.ScopeWriteMessage}
	patient := s.token(t, auth.SubjectPatient, p.P, nil, rw...)
	other := s.token(t, auth.SubjectClinician, p.C2, []string{p.L2}, rw...)
	get := func(path, cookie string) (*http.Response, string) {
		resp, body := ndRaw(t, s, "GET", path, "", "", "", "Cookie", cookie)
		return resp, string(body)
	}

	// A staff account that is no clinician gets no link and a 403 naming
	// the mapping.
	nurse := consoleSignIn(t, s, "n01")
	_, body := get("/ui/", nurse)
	require.NotContains(t, body, `href="/ui/messages"`)
	resp, body := get("/ui/messages", nurse)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, body, "registering a clinician with the id N01")
	resp, _ = get("/ui/messages-stream/"+p.P, nurse)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// S09 becomes a clinician of every ward of its record (L1).
	admin := s.login(t, "a01")
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/clinicians", admin,
		`{"clinician_id":"S09","login_active":true,"groups":["send superclinician"],"location_ids":["`+p.L1+`"]}`, nil).StatusCode)

	// The patient asks L1 for a callback; another clinician talks with
	// its own ward L2, which S09 may not see.
	callback := s.send(t, patient, msgBody("patient", p.P, "location", p.L1, int(message.TypeCallback), "Please call me back <b>today</b>"))
	s.send(t, other, msgBody("clinician", p.C2, "location", p.L2, int(message.TypeGeneral), "not for S09"))

	doctor := consoleSignIn(t, s, "s09")
	resp, body = get("/ui/messages", doctor)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Contains(t, body, `href="/ui/messages" aria-current="page">Messages</a>`, "the nav link")
	require.Contains(t, body, `href="/ui/messages/patient:`+p.P+`"`, "the patient's conversation")
	require.Contains(t, body, "Please call me back &lt;b&gt;today&lt;/b&gt;", "escaped")
	require.Contains(t, body, `<table id="callbacks">`, "the active callback")
	require.NotContains(t, body, "not for S09")
	require.NotContains(t, body, p.L2)
	require.Contains(t, body, `<script src="/ui/static/messages.js" defer></script>`)
	resp, js := get("/ui/static/messages.js", doctor)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, js, "/ui/messages-stream/")

	// The open form: a bad id is named inline with a 400; a good one leads
	// to the conversation.
	resp, body = get("/ui/messages?type=patient&id="+url.QueryEscape("bad id!"), doctor)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "The party id must be")
	resp, _ = get("/ui/messages?type=patient&id="+p.P, doctor)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	conv := "/ui/messages/patient:" + p.P
	require.Equal(t, conv, resp.Header.Get("Location"))
	resp, _ = get("/ui/messages/nobody", doctor)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp, body = get(conv, doctor)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `id="m-`+callback.ID+`"`)
	require.Contains(t, body, "Active callbacks")
	require.Contains(t, body, `<option value="location:`+p.L1+`">`, "send as the ward")
	require.Contains(t, body, `data-streams="`+p.P+" "+p.L1+" S09"+`"`)
	token := consoleCSRF(t, []byte(body))

	// The console's stream of the patient, as S09.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/ui/messages-stream/"+p.P, nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", doctor)
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = stream.Body.Close() }()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	require.Equal(t, "text/event-stream", stream.Header.Get("Content-Type"))

	post := func(form url.Values, headers ...string) (*http.Response, string) {
		resp, body := ndRaw(t, s, "POST", conv, "", consoleFormType, form.Encode(), append([]string{"Cookie", doctor}, headers...)...)
		return resp, string(body)
	}
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
		status  int
		want    string
	}{
		"no CSRF token": {form: url.Values{"sender": {"clinician:S09"}, "message_type": {"0"}, "content": {"hi"}},
			status: http.StatusForbidden, want: "expired or came from another site"},
		"cross-site": {form: url.Values{"csrf": {token}, "sender": {"clinician:S09"}, "message_type": {"0"}, "content": {"hi"}},
			headers: []string{"Origin", "https://evil.example"}, status: http.StatusForbidden, want: "expired or came from another site"},
		"type not a number": {form: url.Values{"csrf": {token}, "sender": {"clinician:S09"}, "message_type": {"x"}, "content": {"hi"}},
			status: http.StatusBadRequest, want: `id="message_type-error">Message type must be one of the listed types`},
		"retired type": {form: url.Values{"csrf": {token}, "sender": {"clinician:S09"}, "message_type": {"4"}, "content": {"hi"}},
			status: http.StatusBadRequest, want: `id="message_type-error">Message type must be one of 0, 1, 2, 3, 5`},
		"blank content": {form: url.Values{"csrf": {token}, "sender": {"clinician:S09"}, "message_type": {"0"}, "content": {"  "}},
			status: http.StatusBadRequest, want: `id="content-error">Message is required`},
		"another ward": {form: url.Values{"csrf": {token}, "sender": {"location:" + p.L2}, "message_type": {"0"}, "content": {"hi"}},
			status: http.StatusForbidden, want: `id="sender-error">Send as the location is not one of the token&#39;s locations`},
		"another clinician": {form: url.Values{"csrf": {token}, "sender": {"clinician:" + p.C2}, "message_type": {"0"}, "content": {"hi"}},
			status: http.StatusForbidden, want: `id="sender-error">`},
		"no sender": {form: url.Values{"csrf": {token}, "message_type": {"0"}, "content": {"hi"}},
			status: http.StatusBadRequest, want: `id="sender-error">Send as must be you or one of your wards`},
	} {
		resp, body := post(tc.form, tc.headers...)
		require.Equal(t, tc.status, resp.StatusCode, name)
		require.Contains(t, body, tc.want, name)
	}

	// A good message: PRG back to the conversation; the patient reads it
	// through the JSON API, and the console's stream carries it.
	resp, _ = post(url.Values{"csrf": {token}, "sender": {"clinician:S09"}, "message_type": {"1"},
		"content": {"Take two tablets\r\nafter dinner"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), conv+"#m-"), resp.Header.Get("Location"))
	var inbox api.MessagePage
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/receivers/"+p.P+"/messages", patient, "", &inbox).StatusCode)
	require.Len(t, inbox.Items, 1)
	got := inbox.Items[0]
	require.Equal(t, "Take two tablets\nafter dinner", got.Content)
	require.Equal(t, "S09", got.SenderID)
	require.Equal(t, "clinician", got.SenderType)
	require.Equal(t, "DOSAGE", got.MessageType.Name)
	require.Equal(t, conv+"#m-"+got.ID, resp.Header.Get("Location"))
	lines := bufio.NewScanner(stream.Body)
	found := false
	for !found && lines.Scan() {
		found = strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), got.ID)
	}
	require.True(t, found, "the console stream carries the sent message")
	_, body = get(conv, doctor)
	require.Contains(t, body, `id="m-`+got.ID+`"`)

	// Signing out ends the session's open streams.
	second := consoleSignIn(t, s, "s09")
	_, page := get("/ui/messages", second)
	req, err = http.NewRequestWithContext(ctx, "GET", s.URL+"/ui/messages-stream/"+p.P, nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", second)
	open, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = open.Body.Close() }()
	require.Equal(t, http.StatusOK, open.StatusCode)
	resp, _ = ndRaw(t, s, "POST", "/ui/logout", "", consoleFormType, url.Values{"csrf": {consoleCSRF(t, []byte(page))}}.Encode(), "Cookie", second)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	signedOut := time.Now()
	_, err = io.Copy(io.Discard, open.Body)
	require.NoError(t, err, "the stream ends (not the test's timeout)")
	t.Logf("stream ended %v after sign-out", time.Since(signedOut).Round(time.Millisecond))

	// When the clinician's login ends, the page and the link go.
	require.Equal(t, http.StatusOK, s.call(t, "PATCH", "/v1/clinicians/S09", admin, `{"login_active":false}`, nil).StatusCode)
	resp, body = get("/ui/messages", doctor)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, body, "login inactive")
	require.NotContains(t, body, `href="/ui/messages"`)
}
