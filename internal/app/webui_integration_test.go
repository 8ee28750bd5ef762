//go:build integration

package app_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/payloadcodec"
	"github.com/vigil-health/vigil/internal/testenv"
)

// webUIScreenshot is the file the Web UI test writes into
// VIGIL_SCREENSHOTS_DIR (docs/ keeps the README's copy).
const webUIScreenshot = "temporal-ui-decoded-incident.png"

// TestDev_WebUIDecodesIncidentForSignedInAdmin opens an incident's run in
// the Temporal Web UI of `vigil dev` in a real headless Chromium: before
// anyone signs in, the page shows the run but not the patient id (the
// payloads are encrypted, and the UI shows Vigil's sign-in hint); once an
// admin has signed in at the API's /ui/login, on the UI's host name, the
// same page decodes the run's input through the API's codec server and
// shows the patient id. With VIGIL_SCREENSHOTS_DIR set it writes a
// screenshot of the decoded page there.
func TestDev_WebUIDecodesIncidentForSignedInAdmin(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "devwebui")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DATABASE_URL":       dsn,
			"VIGIL_HTTP_ADDR":    "127.0.0.1:0",
			"VIGIL_DEV_DATA_DIR": t.TempDir(),
			// The demo hospital's staff (a01 is its admin), without the
			// generator's alerts: the test raises the only incident.
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
	// The UI and the API share a host name, so the SameSite=Strict console
	// cookie travels with the UI's codec calls.
	uiHost, apiHost := mustHost(t, stack.TemporalUIURL), mustHost(t, stack.APIURL)
	require.Equal(t, "127.0.0.1", uiHost)
	require.Equal(t, uiHost, apiHost)

	// A fake patient: nothing here is real data.
	suffix := strings.ToUpper(uuid.NewString()[:8])
	patient, room := "TEST-MRN-"+suffix, "TEST-ROOM-"+suffix
	password := cfg.Dev.DemoPassword.Reveal()
	token := login(t, stack.APIURL, "a01", password)
	var created api.AlertResponse
	call(t, stack.APIURL, "POST", "/v1/alerts", token, `{"alert_type":"FALL_DETECTED","patient_id":"`+patient+
		`","room":"`+room+`","value":"fall","source":"bed-sensor","observed_at":"`+time.Now().UTC().Format(time.RFC3339)+`"}`,
		http.StatusCreated, &created)
	require.True(t, strings.HasPrefix(created.WebUIURL, stack.TemporalUIURL+"/namespaces/"), created.WebUIURL)
	runPage := created.WebUIURL

	browser := newBrowser(t, chromium)

	// The run's input as Temporal stores it: ciphertext, which the UI
	// shows as base64 when it cannot decode it.
	ciphertext := base64.StdEncoding.EncodeToString(startInput(t, stack, created.WorkflowID).GetData())
	require.NotContains(t, ciphertext, patient)

	// Not signed in: the run's page shows the ciphertext as its input,
	// with the codec's sign-in hint, and the patient id is nowhere on it.
	navigate(t, browser, runPage)
	text := waitPageText(t, browser, "the run's page with the ciphertext and the codec's sign-in hint", func(s string) bool {
		return strings.Contains(s, created.WorkflowID) && strings.Contains(s, "Sign in to Vigil as an admin") &&
			strings.Contains(s, ciphertext[:32])
	})
	require.NotContains(t, text, patient)
	require.NotContains(t, text, room)
	html, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, patient, "not even hidden in the page")

	// Sign in as the admin, in the same browser, on the UI's host name.
	navigate(t, browser, stack.APIURL+"/ui/login")
	require.NoError(t, chromedp.Do(browser,
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "a01"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
	))
	waitPageText(t, browser, "the console after signing in", func(s string) bool {
		return strings.Contains(s, "Sign out")
	})

	// The same page now decodes the run's input through the codec server.
	navigate(t, browser, runPage)
	text = waitPageText(t, browser, "the decoded input with the patient id", func(s string) bool {
		return strings.Contains(s, created.WorkflowID) && strings.Contains(s, patient)
	})
	require.Contains(t, text, room)
	require.NotContains(t, text, "Sign in to Vigil as an admin")

	if dir := os.Getenv("VIGIL_SCREENSHOTS_DIR"); dir != "" {
		png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		path := filepath.Join(dir, webUIScreenshot)
		require.NoError(t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a screenshot for the docs
		t.Logf("screenshot: %s", path)
	}
}

// startInput reads the first payload of the run's input from its history
// with a client that has no codec.
func startInput(t *testing.T, stack *app.DevStack, workflowID string) *commonpb.Payload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plain, err := client.DialContext(ctx, client.Options{HostPort: stack.TemporalAddress, Namespace: stack.Namespace, Logger: quietSDKLogger{}})
	require.NoError(t, err)
	defer plain.Close()
	ev, err := plain.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	require.NoError(t, err)
	payloads := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	require.NotEmpty(t, payloads)
	require.Equal(t, payloadcodec.EncodingEncrypted, string(payloads[0].GetMetadata()[converter.MetadataEncoding]))
	return payloads[0]
}

// findChromium returns the path of a Chromium (or Chrome) binary. Without
// one the test is skipped, except on CI (CI set), where .ci/run installs
// it and its absence is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "no Chromium on PATH (chromium, chromium-browser or google-chrome); on Debian: apt-get install -y chromium"
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal(msg + " (.ci/run installs it)")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless Chromium with its own profile and returns a
// tab's context, ended (and the browser stopped) when the test ends. Every
// action on it fails after three minutes.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root in its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(tabCtx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// navigate opens rawURL in the tab and waits for it to load. A navigation
// the page aborts (the Web UI, a single-page app, may still be moving to
// its run's canonical URL) is tried again.
func navigate(t *testing.T, ctx context.Context, rawURL string) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var le *chromedp.LoadError
		if err = chromedp.Do(ctx, chromedp.Navigate(rawURL)); !errors.As(err, &le) || le.ErrorText != "net::ERR_ABORTED" {
			break
		}
		t.Logf("navigation to %s aborted (attempt %d), trying again", rawURL, attempt)
	}
	require.NoError(t, err, "open %s", rawURL)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	require.NoError(t, err)
	t.Logf("opened %s (now at %s)", rawURL, href)
}

// waitPageText polls the page's visible text until ok accepts it (the Web
// UI is a single-page app that fills itself in after loading) and returns
// it; it fails the test, showing the last text, after a minute.
func waitPageText(t *testing.T, ctx context.Context, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var text string
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if err == nil {
			text = s
			if ok(text) {
				return text
			}
		}
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("waited a minute for %s", what), "last error: %v\nlast page text:\n%s", err, text)
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, fmt.Sprintf("waiting for %s", what), "%v\nlast page text:\n%s", ctx.Err(), text)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Hostname()
}
