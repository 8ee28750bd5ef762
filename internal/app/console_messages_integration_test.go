//go:build integration

package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
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
	chromium := findChromium(t)
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "devmessages")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DATABASE_URL":                 dsn,
			"VIGIL_HTTP_ADDR":              "127.0.0.1:0",
			"VIGIL_DEV_DATA_DIR":           t.TempDir(),
			"VIGIL_DEMO":                   "true",
			"VIGIL_DEMO_ALERTS_PER_MINUTE": "0",
		}[k]
		return v, ok
	})
	require.NoError(t, err)
	anyPorts(&cfg)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := app.StartDev(ctx, cfg, logger)
	require.NoError(t, err)
	t.Cleanup(stack.Stop)
	base := stack.APIURL
	password := cfg.Dev.DemoPassword.Reveal()

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

	browser := newBrowser(t, chromium)
	var (
		mu       sync.Mutex
		problems []string
	)
	// Subscribe before any other action: the first one starts the browser.
	console := chromedp.Console(browser)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	checkConsole := func(where string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, problems, "browser console errors by %s", where)
	}
	measure := func(page string) {
		t.Helper()
		var p *pagePerf
		require.Eventually(t, func() bool {
			p, err = chromedp.Run(browser, chromedp.Evaluate[*pagePerf](measurePage))
			return err == nil && p != nil
		}, 10*time.Second, 50*time.Millisecond)
		t.Logf("page %s: first load %.0f ms (interactive %.0f ms), %.1f KB in %d resources + the document",
			page, p.Load, p.Interactive, p.Bytes/1024, p.Resources)
	}
	shoot := func(name string) {
		t.Helper()
		dir := os.Getenv("VIGIL_SCREENSHOTS_DIR")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		path := filepath.Join(dir, "console-"+name+".png")
		require.NoError(t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a screenshot for the docs
		t.Logf("screenshot: %s", path)
	}

	// 1. The doctor signs in; the nav links to Messages, which lists the
	// patient's conversation.
	navigate(t, browser, base+"/")
	require.NoError(t, chromedp.Do(browser,
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "s09"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
	))
	waitPageText(t, browser, "My work after signing in", func(s string) bool { return strings.Contains(s, "Messages") })
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`nav a[href="/ui/messages"]`))))
	waitPageText(t, browser, "the conversation list", func(s string) bool {
		return strings.Contains(s, "Conversations") && strings.Contains(s, "patient "+pid) && strings.Contains(s, "My inhaler is empty.")
	})
	measure("messages")
	// A new message shows on the list page too, without a reload.
	listPosted := time.Now()
	sendAs("Are you there?")
	waitPageText(t, browser, "the new message on the list page", func(s string) bool {
		return strings.Contains(s, "New since you opened this page") && strings.Contains(s, "Are you there?")
	})
	t.Logf("live arrival on the list page: shown within %d ms of posting", time.Since(listPosted).Milliseconds())
	shoot("messages-list")
	checkConsole("the conversation list")

	// 2. The conversation; the doctor sends a DOSAGE message through the
	// form.
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`a[href="/ui/messages/patient:`+pid+`"]`))))
	waitPageText(t, browser, "the conversation", func(s string) bool {
		return strings.Contains(s, "Messages with patient "+pid) && strings.Contains(s, "Send a message")
	})
	measure("conversation")
	const reply = "A new inhaler is on its way to your room."
	require.NoError(t, chromedp.Do(browser,
		chromedp.SetValue(chromedp.CSS(`#message_type`), "1"),
		chromedp.SendKeys(chromedp.CSS(`#content`), reply),
		chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)),
	))
	// The page after the redirect loads fully at once: the pages before it
	// closed their streams, so the browser's six connections per site are
	// free.
	require.Eventually(t, func() bool {
		st, err := chromedp.Run(browser, chromedp.Evaluate[string](`location.hash.startsWith('#m-') ? document.readyState : ''`))
		return err == nil && st == "complete"
	}, 10*time.Second, 100*time.Millisecond, "the conversation after sending loads fully")
	waitPageText(t, browser, "the sent message in the conversation", func(s string) bool {
		return strings.Contains(s, reply) && strings.Contains(s, "DOSAGE")
	})
	checkConsole("sending")

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
	_, err = chromedp.Run(browser, chromedp.Evaluate[bool](`(window.vigilSamePage = true)`))
	require.NoError(t, err)
	posted := time.Now()
	sendAs("Thank you, doctor.")
	waitPageText(t, browser, "the patient's answer arriving live", func(s string) bool { return strings.Contains(s, "Thank you, doctor.") })
	same, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.vigilSamePage === true`))
	require.NoError(t, err)
	require.True(t, same, "no reload")
	arrived, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.vigilMessageArrivedAt || 0`))
	require.NoError(t, err)
	t.Logf("live arrival: patient's message posted to shown in the conversation in %d ms", int64(arrived)-posted.UnixMilli())
	title, err := chromedp.Run(browser, chromedp.Title())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(title, "(1) "), "the tab title counts the new message: %q", title)
	shoot("messages")
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(390, 844)))
	shoot("messages-phone")
	checkConsole("the live arrival")
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
