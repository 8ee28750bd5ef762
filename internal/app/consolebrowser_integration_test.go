//go:build integration

package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
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

// demoEnv is the demo hospital (its staff, a01 its admin, and its watches)
// without the generator's alerts: the tests raise the only incidents.
var demoEnv = map[string]string{
	"VIGIL_DEMO":                   "true",
	"VIGIL_DEMO_ALERTS_PER_MINUTE": "0",
}

// devConfig creates a fresh database named after name, dropped when the
// test ends, and loads the configuration of a `vigil dev` on it: the API
// on any port, the embedded Temporal's data in a temporary directory and
// on ports it picks as it binds them, with the variables of envs (later
// ones win) on top. It returns the configuration and the database's URL.
func devConfig(t *testing.T, name string, envs ...map[string]string) (config.Config, string) {
	t.Helper()
	dsn, err := testenv.NewDatabase(context.Background(), name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })
	env := map[string]string{
		"DATABASE_URL":       dsn,
		"VIGIL_HTTP_ADDR":    "127.0.0.1:0",
		"VIGIL_DEV_DATA_DIR": t.TempDir(),
	}
	for _, e := range envs {
		maps.Copy(env, e)
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	require.NoError(t, err)
	anyPorts(&cfg)
	return cfg, dsn
}

// stderrLogger logs from level up to the test's stderr.
func stderrLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startDev starts the stack as `vigil dev` does, logging from level up, and
// stops it when the test ends (stopping it twice is harmless, so a test may
// stop it itself).
func startDev(t *testing.T, cfg config.Config, level slog.Level) *app.DevStack {
	t.Helper()
	stack, err := app.StartDev(context.Background(), cfg, stderrLogger(level))
	require.NoError(t, err)
	t.Cleanup(stack.Stop)
	return stack
}

// fakeMRN is a fake patient's id: nothing in the tests is real data.
func fakeMRN() string {
	return "TEST-MRN-" + strings.ToUpper(uuid.NewString()[:8])
}

// raiseFall posts a fall of patient in room, observed now, through the API
// with an admin's token and returns the API's answer.
func raiseFall(t *testing.T, base, token, patient, room string) api.AlertResponse {
	t.Helper()
	var created api.AlertResponse
	call(t, base, "POST", "/v1/alerts", token, `{"alert_type":"FALL_DETECTED","patient_id":"`+patient+
		`","room":"`+room+`","value":"fall","source":"bed-sensor","observed_at":"`+time.Now().UTC().Format(time.RFC3339)+`"}`,
		http.StatusCreated, &created)
	return created
}

// consoleStack is a `vigil dev` stack with the demo hospital for a test in
// headless Chromium.
type consoleStack struct {
	*app.DevStack
	cfg      config.Config
	chromium string
	// password is the demo staff's password.
	password string
}

// startConsoleStack starts a `vigil dev` stack with the demo hospital
// (demoEnv and then envs, see devConfig) on a fresh database named after
// name. Without Chromium the test is skipped before anything starts.
func startConsoleStack(t *testing.T, name string, envs ...map[string]string) *consoleStack {
	t.Helper()
	chromium := findChromium(t)
	cfg, _ := devConfig(t, name, append([]map[string]string{demoEnv}, envs...)...)
	stack := startDev(t, cfg, slog.LevelWarn)
	return &consoleStack{DevStack: stack, cfg: cfg, chromium: chromium, password: cfg.Dev.DemoPassword.Reveal()}
}

// consoleBrowser is a headless Chromium tab on a stack's API that records
// the errors and exceptions of the browser's console.
type consoleBrowser struct {
	t *testing.T
	// tab is the tab's context (see newBrowser).
	tab      context.Context
	base     string
	password string

	mu       sync.Mutex
	problems []string
}

// openBrowser starts a headless Chromium (see newBrowser) and records its
// console's errors from its first page on.
func (s *consoleStack) openBrowser(t *testing.T) *consoleBrowser {
	t.Helper()
	b := &consoleBrowser{t: t, tab: newBrowser(t, s.chromium), base: s.APIURL, password: s.password}
	// Subscribe before any other action: the first one starts the browser.
	messages := chromedp.Console(b.tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// checkConsole fails the test if the browser's console had an error or an
// exception so far; where names the step.
func (b *consoleBrowser) checkConsole(where string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(b.t, b.problems, "browser console errors by %s", where)
}

// navigate opens rawURL in the tab (see navigate).
func (b *consoleBrowser) navigate(rawURL string) {
	b.t.Helper()
	navigate(b.t, b.tab, rawURL)
}

// waitText waits for the page's text that ok accepts and returns it (see
// waitPageText).
func (b *consoleBrowser) waitText(what string, ok func(string) bool) string {
	b.t.Helper()
	return waitPageText(b.t, b.tab, what, ok)
}

// click clicks the element selector names, trying again while the page
// that holds it is still being replaced (a redirect's last step, a list
// the page's script redraws): Chromium then answers "Could not find node
// with given id" before anything was clicked.
func (b *consoleBrowser) click(selector string) {
	b.t.Helper()
	var err error
	require.Eventually(b.t, func() bool {
		err = chromedp.Do(b.tab, chromedp.Click(chromedp.CSS(selector)))
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "click %s", selector)
	require.NoError(b.t, err)
}

// signIn opens path on the API, which shows the sign-in form, and submits
// it for login with the demo staff's password. The caller waits for the
// page it expects next.
func (b *consoleBrowser) signIn(path, login string) {
	b.t.Helper()
	b.navigate(b.base + path)
	require.NoError(b.t, chromedp.Do(b.tab,
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), login),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), b.password),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
	))
}

// measure logs the first load of the page in the tab, named page, once its
// load event has ended, and returns it.
func (b *consoleBrowser) measure(page string) pagePerf {
	b.t.Helper()
	var p *pagePerf
	require.Eventually(b.t, func() bool {
		var err error
		p, err = chromedp.Run(b.tab, chromedp.Evaluate[*pagePerf](measurePage))
		return err == nil && p != nil
	}, 10*time.Second, 50*time.Millisecond)
	b.t.Logf("page %s: first load %.0f ms (interactive %.0f ms), %.1f KB in %d resources + the document",
		page, p.Load, p.Interactive, p.Bytes/1024, p.Resources)
	return *p
}

// shoot writes a full screenshot of the tab as console-<name>.png into
// VIGIL_SCREENSHOTS_DIR, when set.
func (b *consoleBrowser) shoot(name string) {
	b.t.Helper()
	b.screenshot("console-"+name+".png", chromedp.FullScreenshot(100))
}

// screenshot writes the image that capture takes as file into
// VIGIL_SCREENSHOTS_DIR, when set.
func (b *consoleBrowser) screenshot(file string, capture chromedp.Action[[]byte]) {
	b.t.Helper()
	dir := os.Getenv("VIGIL_SCREENSHOTS_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.tab, capture)
	require.NoError(b.t, err)
	require.NoError(b.t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, file)
	require.NoError(b.t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a screenshot for the docs
	b.t.Logf("screenshot: %s", path)
}

// pagePerf is a page's first load as the browser's Performance API saw it.
type pagePerf struct {
	// Interactive and Load are milliseconds from the navigation's start to
	// domInteractive and to the end of the load event.
	Interactive float64 `json:"interactive"`
	Load        float64 `json:"load"`
	// Bytes are the transferred bytes of the document and every resource
	// (headers included); Resources counts the resources.
	Bytes     float64 `json:"bytes"`
	Resources int     `json:"resources"`
}

// measurePage reads the Performance API's navigation and resource entries
// of the page in the tab, once its load event has ended.
const measurePage = `(() => {
	const n = performance.getEntriesByType('navigation')[0];
	if (!n || n.loadEventEnd === 0) { return null; }
	const rs = performance.getEntriesByType('resource');
	let bytes = n.transferSize;
	for (const r of rs) { bytes += r.transferSize; }
	return {interactive: n.domInteractive - n.startTime, load: n.loadEventEnd - n.startTime, bytes: bytes, resources: rs.length};
})()`

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
