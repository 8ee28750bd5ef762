//go:build integration

package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

// TestConsoleMessages_ClinicianAndPatientInChromium drives the console's
// Messages page of `vigil dev` in headless Chromium: a doctor whose staff
// account is a clinician (of every ward of its record, WARD-7) signs in,
// opens the conversation with a patient who activated through the real
// PIN and code, sends a message through the form, and the patient reads it
// with its own token through the JSON API; the patient's answer then
// appears in the open page without a reload. Any browser console error
// fails the test. The pages' first loads (time, bytes) and the live
// arrival's latency are logged; the page is screenshotted into
// VIGIL_SCREENSHOTS_DIR when set.
func TestConsoleMessages_ClinicianAndPatientInChromium(t *testing.T) {
	stack := startConsoleStack(t, "devmessages")
	base := stack.APIURL
	password := stack.password

	// S09 (Dr Lucas Pembridge) is registered as a clinician of WARD-7.
	admin := login(t, base, "a01", password)
	call(t, base, "POST", "/v1/clinicians", admin,
		`{"clinician_id":"S09","login_active":true,"groups":["send superclinician"],"location_ids":["WARD-7"]}`, http.StatusCreated, nil)

	// A patient activates the real way (a nurse's PIN and code, then the
	// authorisation code) and writes to WARD-7.
	pid := "PAT-" + strings.ToUpper(uuid.NewString()[:8])
	var act api.PatientActivationCreated
	call(t, base, "POST", "/v1/patients/"+pid+"/activation", login(t, base, "n01", password), "", http.StatusCreated, &act)
	var done api.ActivationCompleted
	call(t, base, "POST", "/v1/activations/"+act.ActivationCode, "", `{"pin":"`+act.PIN+`"}`, http.StatusOK, &done)
	patient := patientToken(t, base, pid, done.AuthorisationCode)
	sendAs := func(content string) {
		t.Helper()
		call(t, base, "POST", "/v1/messages", patient, `{"sender_type":"patient","sender_id":"`+pid+
			`","receiver_type":"location","receiver_id":"WARD-7","message_type":{"value":0},"content":"`+content+`"}`, http.StatusCreated, nil)
	}
	sendAs("My inhaler is empty.")

	b := stack.openBrowser(t)

	// 1. The doctor signs in; the nav links to Messages, which lists the
	// patient's conversation.
	b.signIn("/", "s09")
	b.waitText("My work after signing in", func(s string) bool { return strings.Contains(s, "Messages") })
	b.click(`nav a[href="/ui/messages"]`)
	b.waitText("the conversation list", func(s string) bool {
		return strings.Contains(s, "Conversations") && strings.Contains(s, "patient "+pid) && strings.Contains(s, "My inhaler is empty.")
	})
	b.measure("messages")
	// A new message shows on the list page too, without a reload.
	listPosted := time.Now()
	sendAs("Are you there?")
	b.waitText("the new message on the list page", func(s string) bool {
		return strings.Contains(s, "New since you opened this page") && strings.Contains(s, "Are you there?")
	})
	t.Logf("live arrival on the list page: shown within %d ms of posting", time.Since(listPosted).Milliseconds())
	b.shoot("messages-list")
	b.checkConsole("the conversation list")

	// 2. The conversation; the doctor sends a DOSAGE message through the
	// form.
	require.NoError(t, chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(`a[href="/ui/messages/patient:`+pid+`"]`))))
	b.waitText("the conversation", func(s string) bool {
		return strings.Contains(s, "Messages with patient "+pid) && strings.Contains(s, "Send a message")
	})
	b.measure("conversation")
	const reply = "A new inhaler is on its way to your room."
	require.NoError(t, chromedp.Do(b.tab,
		chromedp.SetValue(chromedp.CSS(`#message_type`), "1"),
		chromedp.SendKeys(chromedp.CSS(`#content`), reply),
		chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)),
	))
	// The page after the redirect loads fully at once: the pages before it
	// closed their streams, so the browser's six connections per site are
	// free.
	require.Eventually(t, func() bool {
		st, err := chromedp.Run(b.tab, chromedp.Evaluate[string](`location.hash.startsWith('#m-') ? document.readyState : ''`))
		return err == nil && st == "complete"
	}, 10*time.Second, 100*time.Millisecond, "the conversation after sending loads fully")
	b.waitText("the sent message in the conversation", func(s string) bool {
		return strings.Contains(s, reply) && strings.Contains(s, "DOSAGE")
	})
	b.checkConsole("sending")

	// 3. The patient's side receives it, through the JSON API with the
	// patient's own token.
	var inbox api.MessagePage
	call(t, base, "GET", "/v1/receivers/"+pid+"/messages", patient, "", http.StatusOK, &inbox)
	require.Len(t, inbox.Items, 1)
	require.Equal(t, reply, inbox.Items[0].Content)
	require.Equal(t, "S09", inbox.Items[0].SenderID)
	require.Equal(t, "DOSAGE", inbox.Items[0].MessageType.Name)

	// 4. The patient answers; the answer appears in the open page without
	// a reload.
	_, err := chromedp.Run(b.tab, chromedp.Evaluate[bool](`(window.vigilSamePage = true)`))
	require.NoError(t, err)
	posted := time.Now()
	sendAs("Thank you, doctor.")
	b.waitText("the patient's answer arriving live", func(s string) bool { return strings.Contains(s, "Thank you, doctor.") })
	same, err := chromedp.Run(b.tab, chromedp.Evaluate[bool](`window.vigilSamePage === true`))
	require.NoError(t, err)
	require.True(t, same, "no reload")
	arrived, err := chromedp.Run(b.tab, chromedp.Evaluate[float64](`window.vigilMessageArrivedAt || 0`))
	require.NoError(t, err)
	t.Logf("live arrival: patient's message posted to shown in the conversation in %d ms", int64(arrived)-posted.UnixMilli())
	title, err := chromedp.Run(b.tab, chromedp.Title())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(title, "(1) "), "the tab title counts the new message: %q", title)
	b.shoot("messages")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(390, 844)))
	b.shoot("messages-phone")
	b.checkConsole("the live arrival")
}

// patientToken exchanges a patient's authorisation code for its token.
func patientToken(t *testing.T, base, pid, code string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", base+"/v1/patients/"+pid+"/token", nil)
	require.NoError(t, err)
	req.Header.Set(api.AuthorisationCodeHeader, code)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var tok api.SubjectToken
	require.NoError(t, json.Unmarshal(raw, &tok))
	return tok.Token
}
