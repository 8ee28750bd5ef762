//go:build integration

package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/payloadcodec"
	"github.com/vigil-health/vigil/internal/temporalclient"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// codecUI is the Temporal Web UI origin the codec stack allows.
const codecUI = "http://127.0.0.1:8233"

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// codecStack is a stack whose Temporal client (API and worker) encrypts
// every payload, as production's does, with its API log captured.
type codecStack struct {
	*stack
	codec *payloadcodec.Codec
	log   *lockedBuffer
}

func startCodecStack(t *testing.T) *codecStack {
	t.Helper()
	k, err := payloadcodec.NewKey("it1")
	require.NoError(t, err)
	codec, err := payloadcodec.NewCodec([]payloadcodec.Key{k})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, err := temporalclient.Dial(ctx, env.Temporal.FrontendAddress(), env.Temporal.Namespace(), env.Logger,
		temporalclient.WithDataConverter(codec.DataConverter()))
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	log := &lockedBuffer{}
	s := startStackOn(t, tc, worker.Dependencies{}, func(d *api.Deps) {
		d.PayloadCodec = codec
		d.TemporalUIURL = codecUI
		d.Logger = slog.New(slog.NewJSONHandler(log, nil))
	})
	return &codecStack{stack: s, codec: codec, log: log}
}

// rawHistory is a run's history read with a client that has no codec (as
// the Web UI, tctl or the database see it), each event marshalled to its
// protobuf bytes.
func rawHistory(t *testing.T, workflowID string) ([]byte, *historypb.History) {
	t.Helper()
	hist := &historypb.History{}
	var raw []byte
	it := env.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		b, err := proto.Marshal(ev)
		require.NoError(t, err)
		raw = append(raw, b...)
		hist.Events = append(hist.Events, ev)
	}
	return raw, hist
}

// historyPayloads are the payloads of a history that go through the codec
// (search attributes do not).
func historyPayloads(t *testing.T, hist *historypb.History) []*commonpb.Payload {
	t.Helper()
	var out []*commonpb.Payload
	require.NoError(t, proxy.VisitPayloads(context.Background(), hist, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			out = append(out, ps...)
			return ps, nil
		},
	}))
	return out
}

// codecCall posts payloads to the codec server with optional headers
// (name, value pairs) and returns the status and body.
func codecCall(t *testing.T, s *codecStack, path string, payloads []*commonpb.Payload, headers ...string) (int, []byte) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), "POST", s.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out.Bytes()
}

// TestCodec_HistoryHoldsNoPatientData raises an incident through the API on
// a stack that encrypts its payloads, adds a note, and reads the run's
// history as bytes with a client that has no codec: no patient id, room or
// note is in it. An admin's POST /codec/decode of the same payloads gives
// them back in clear; nobody else gets them.
func TestCodec_HistoryHoldsNoPatientData(t *testing.T) {
	s := startCodecStack(t)
	key := s.apiKey(t, "codec-sensors")
	suffix := strings.ToUpper(uuid.NewString()[:8])
	patient, room, note := "MRN-CODEC-"+suffix, "ROOM-CODEC-"+suffix, "NOTE-CODEC-"+suffix+" patient is allergic to latex"

	var created api.AlertResponse
	body := `{"alert_type":"FALL_DETECTED","patient_id":"` + patient + `","room":"` + room +
		`","value":"fall","source":"bed-sensor","observed_at":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, body, &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" && r.AssignedTo != nil })
	nurse := s.login(t, "n01")
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/incidents/"+created.IncidentID+"/notes", nurse, `{"note":"`+note+`"}`, nil).StatusCode)
	// A rejected update's reason (its failure message, encoded too) still
	// reaches the caller.
	var assignee string
	require.NoError(t, env.DB.Get(&assignee, `SELECT login FROM staff WHERE id = $1`, *row.AssignedTo))
	assigneeToken := s.login(t, assignee)
	var e api.ErrorBody
	require.Equal(t, http.StatusConflict, s.call(t, "POST", "/v1/incidents/"+created.IncidentID+"/start", assigneeToken, "", &e).StatusCode)
	require.Contains(t, e.Error.Message, "acknowledge it first")
	// Leave nothing open or unread for the tests that follow (they pick the
	// least busy nurse and read her unread pages).
	t.Cleanup(func() {
		path := "/v1/incidents/" + created.IncidentID
		require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/acknowledge", assigneeToken, "", nil).StatusCode)
		require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resolve", assigneeToken, `{"resolution_notes":"codec test done"}`, nil).StatusCode)
		require.Less(t, s.call(t, "POST", "/v1/me/notifications/read-all", assigneeToken, "", nil).StatusCode, 300)
	})
	var workflowID string
	require.NoError(t, env.DB.Get(&workflowID, `SELECT workflow_id FROM incidents WHERE id = $1`, created.IncidentID))

	// The history, as anyone with Temporal access reads it.
	raw, hist := rawHistory(t, workflowID)
	require.NotEmpty(t, raw)
	for _, clear := range []string{patient, room, "NOTE-CODEC-" + suffix, "allergic to latex"} {
		require.NotContains(t, string(raw), clear)
	}
	payloads := historyPayloads(t, hist)
	require.NotEmpty(t, payloads)
	for _, p := range payloads {
		require.Equal(t, payloadcodec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]), "every payload is encrypted")
		require.Equal(t, "it1", string(p.Metadata[payloadcodec.MetadataKeyID]))
	}
	// Search attributes stay readable (and hold no patient data).
	started := hist.Events[0].GetWorkflowExecutionStartedEventAttributes()
	require.Equal(t, "json/plain", string(started.GetSearchAttributes().GetIndexedFields()["VigilKind"].GetMetadata()[converter.MetadataEncoding]))

	// An admin decodes them, with the Web UI's headers.
	adminLogin := loginAs(t, s.stack, "a01")
	status, out := codecCall(t, s, "/codec/decode", payloads,
		"Authorization", "Bearer "+adminLogin.AccessToken, "Origin", codecUI, "X-Namespace", env.Temporal.Namespace())
	require.Equal(t, http.StatusOK, status, string(out))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(out, &decoded))
	require.Len(t, decoded.Payloads, len(payloads))
	var clearText strings.Builder
	for _, p := range decoded.Payloads {
		require.NotEqual(t, payloadcodec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
		clearText.Write(p.Data)
	}
	require.Contains(t, clearText.String(), patient)
	require.Contains(t, clearText.String(), room)
	require.Contains(t, clearText.String(), note)
	// The workflow input is among them (after the run's summary and
	// details, which hold no patient data).
	var in workflows.IncidentInput
	for _, p := range decoded.Payloads {
		var candidate workflows.IncidentInput
		if converter.GetDefaultDataConverter().FromPayload(p, &candidate) == nil && candidate.PatientID != "" {
			in = candidate
			break
		}
	}
	require.Equal(t, patient, in.PatientID)
	require.Equal(t, room, in.Room)

	// The decode is logged: who and how many, never what.
	require.Eventually(t, func() bool { return strings.Contains(s.log.String(), `"msg":"temporal payloads decoded"`) }, 5*time.Second, 20*time.Millisecond)
	var line string
	for l := range strings.SplitSeq(s.log.String(), "\n") {
		if strings.Contains(l, `"msg":"temporal payloads decoded"`) {
			line = l
		}
	}
	require.Contains(t, line, `"staff_id":"`+adminLogin.Staff.ID+`"`)
	require.Contains(t, line, `"payloads":`+strconv.Itoa(len(payloads)))
	require.NotContains(t, s.log.String(), patient)
	require.NotContains(t, s.log.String(), room)

	// Nobody else: no credentials, a forged or revoked token, a nurse.
	status, out = codecCall(t, s, "/codec/decode", payloads, "Origin", codecUI)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, string(out), `"code":"unauthorized"`)
	require.NotContains(t, string(out), patient)
	status, _ = codecCall(t, s, "/codec/decode", payloads, "Authorization", "Bearer not-a-token")
	require.Equal(t, http.StatusUnauthorized, status)
	status, out = codecCall(t, s, "/codec/decode", payloads, "Authorization", "Bearer "+nurse, "Origin", codecUI)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, string(out), `"code":"forbidden"`)
	require.NotContains(t, string(out), patient)
	status, _ = codecCall(t, s, "/codec/decode", payloads, "Authorization", "Bearer "+adminLogin.AccessToken, "X-Namespace", "someone-else")
	require.Equal(t, http.StatusForbidden, status)

	require.Equal(t, http.StatusNoContent, s.call(t, "POST", "/v1/auth/logout", adminLogin.AccessToken, "", nil).StatusCode)
	status, out = codecCall(t, s, "/codec/decode", payloads, "Authorization", "Bearer "+adminLogin.AccessToken)
	require.Equal(t, http.StatusUnauthorized, status, "a revoked session decodes nothing")
	require.NotContains(t, string(out), patient)
}

// TestCodec_WebUIPreflightAndConsoleCookie is the Web UI's path: a CORS
// preflight from its origin, then a credentialed POST that carries only the
// console session cookie (set by /ui/login on /codec as well as /ui).
func TestCodec_WebUIPreflightAndConsoleCookie(t *testing.T) {
	s := startCodecStack(t)

	req, err := http.NewRequestWithContext(context.Background(), "OPTIONS", s.URL+"/codec/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", codecUI)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, codecUI, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	for _, h := range []string{"Content-Type", "X-Namespace", "Authorization"} {
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), h)
	}
	req, err = http.NewRequestWithContext(context.Background(), "OPTIONS", s.URL+"/codec/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://attacker.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// Sign in to the console as the demo admin; the session cookie is set
	// on /codec too.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"login": {"a01"}, "password": {demoPassword}, "next": {"/ui/nodes"}}
	resp, err = noRedirect.PostForm(s.URL+"/ui/login", form) //nolint:noctx // test
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var codecCookie, uiAccess, uiSession *http.Cookie
	for _, c := range resp.Cookies() {
		switch {
		case c.Name == "vigil_refresh" && c.Path == "/codec":
			codecCookie = c
		case c.Name == "vigil_refresh" && c.Path == "/ui":
			uiSession = c
		case c.Name == "vigil_token" && c.Path == "/ui":
			uiAccess = c
		case c.Path != "/ui":
			t.Fatalf("cookie %s set on %s", c.Name, c.Path)
		}
	}
	require.NotNil(t, codecCookie, "the session cookie is set on /codec")
	require.NotNil(t, uiSession)
	require.NotNil(t, uiAccess)
	require.True(t, codecCookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, codecCookie.SameSite)
	require.Equal(t, uiSession.Value, codecCookie.Value)

	p, err := s.codec.DataConverter().ToPayload(workflows.IncidentInput{PatientID: "MRN-COOKIE-1", Room: "ROOM-COOKIE-1"})
	require.NoError(t, err)
	cookie := "vigil_refresh=" + codecCookie.Value
	status, out := codecCall(t, s, "/codec/decode", []*commonpb.Payload{p}, "Cookie", cookie, "Origin", codecUI, "X-Namespace", env.Temporal.Namespace())
	require.Equal(t, http.StatusOK, status, string(out))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(out, &decoded))
	require.Contains(t, string(decoded.Payloads[0].Data), "MRN-COOKIE-1")

	// A nurse's console session is refused.
	form = url.Values{"login": {"n02"}, "password": {demoPassword}, "next": {"/ui/nodes"}}
	resp, err = noRedirect.PostForm(s.URL+"/ui/login", form) //nolint:noctx // test
	require.NoError(t, err)
	_ = resp.Body.Close()
	var nurseCookie string
	for _, c := range resp.Cookies() {
		if c.Name == "vigil_refresh" && c.Path == "/codec" {
			nurseCookie = c.Value
		}
	}
	require.NotEmpty(t, nurseCookie)
	status, _ = codecCall(t, s, "/codec/decode", []*commonpb.Payload{p}, "Cookie", "vigil_refresh="+nurseCookie, "Origin", codecUI)
	require.Equal(t, http.StatusForbidden, status)

	// Signing out of the console ends the cookie's use here too, and clears
	// it on both paths.
	_, page := ndRaw(t, s.stack, "GET", "/ui/nodes", "", "", "", "Cookie", "vigil_token="+uiAccess.Value)
	req, err = http.NewRequestWithContext(context.Background(), "POST", s.URL+"/ui/logout",
		strings.NewReader(url.Values{"csrf": {consoleCSRF(t, page)}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "vigil_token", Value: uiAccess.Value})
	req.AddCookie(&http.Cookie{Name: "vigil_refresh", Value: uiSession.Value})
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	cleared := map[string]bool{}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			cleared[c.Name+" "+c.Path] = true
		}
	}
	require.True(t, cleared["vigil_refresh /codec"], "logout clears the /codec cookie: %v", cleared)
	status, _ = codecCall(t, s, "/codec/decode", []*commonpb.Payload{p}, "Cookie", cookie, "Origin", codecUI)
	require.Equal(t, http.StatusUnauthorized, status)
}

// loginAs signs a demo staff member in through the API.
func loginAs(t *testing.T, s *stack, login string) api.TokenResponse {
	t.Helper()
	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/login", "", `{"login":"`+login+`","password":"`+demoPassword+`"}`, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return tok
}
