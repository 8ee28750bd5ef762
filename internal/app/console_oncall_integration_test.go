//go:build integration

package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

// TestConsole_ChargeNurseAddsAnOverrideInChromium drives the On call page
// of `vigil dev` in headless Chromium: a charge nurse signs in, adds an
// override through the form (datetime-local inputs on the hospital's
// clock), and sees it listed and covering its role now. Any browser console
// error fails the test; the page's first load (time, bytes) is logged and,
// with VIGIL_SCREENSHOTS_DIR set, it is screenshotted (console-oncall.png,
// console-oncall-phone.png at 390 px).
func TestConsole_ChargeNurseAddsAnOverrideInChromium(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "devoncall")
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

	browser := newBrowser(t, chromium)
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(browser)
	go func() {
		for m, err := range messages {
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

	// The charge nurse signs in and opens On call from the navigation.
	navigate(t, browser, base+"/")
	require.NoError(t, chromedp.Do(browser,
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "c01"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), cfg.Dev.DemoPassword.Reveal()),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
	))
	waitPageText(t, browser, "My work after signing in", func(s string) bool { return strings.Contains(s, "Sign out") })
	require.NoError(t, chromedp.Do(browser, chromedp.Click(chromedp.CSS(`nav a[href="/ui/oncall"]`))))
	text := waitPageText(t, browser, "the On call page", func(s string) bool { return strings.Contains(s, "Add an override") })
	require.Contains(t, text, "Europe/London")
	var perf *pagePerf
	require.Eventually(t, func() bool {
		perf, err = chromedp.Run(browser, chromedp.Evaluate[*pagePerf](measurePage))
		return err == nil && perf != nil
	}, 10*time.Second, 50*time.Millisecond)
	t.Logf("page On call: first load %.0f ms (interactive %.0f ms), %.1f KB in %d resources + the document",
		perf.Load, perf.Interactive, perf.Bytes/1024, perf.Resources)
	current, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('nav a[aria-current]').textContent`))
	require.NoError(t, err)
	require.Equal(t, "On call", current)
	checkConsole("the On call page")

	// She puts N02 on call for NURSE from a minute ago for two hours, on
	// the hospital's clock, through the form.
	now := time.Now().In(cfg.HospitalTZ)
	form := `form[action="/ui/oncall/overrides"]`
	require.NoError(t, chromedp.Do(browser,
		chromedp.SetValue(chromedp.CSS(form+` select[name=role]`), "NURSE"),
		chromedp.SetValue(chromedp.CSS(form+` select[name=staff_id]`), "N02"),
		chromedp.SetValue(chromedp.CSS(form+` input[name=starts_at]`), now.Add(-time.Minute).Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.CSS(form+` input[name=ends_at]`), now.Add(2*time.Hour).Format("2006-01-02T15:04")),
		chromedp.SendKeys(chromedp.CSS(form+` input[name=reason]`), "Browser test cover"),
		chromedp.Click(chromedp.CSS(form+` button[type=submit]`)),
	))
	waitPageText(t, browser, "the override added", func(s string) bool { return strings.Contains(s, "Override added.") })
	nurses, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#r-NURSE`)))
	require.NoError(t, err)
	require.Contains(t, nurses, "(N02)", "N02 covers NURSE now")
	require.Contains(t, nurses, "override")
	listed, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#overrides tbody`)))
	require.NoError(t, err)
	for _, want := range []string{"NURSE", "now", "(N02)", "Browser test cover", "(C01)", "Delete"} {
		require.Contains(t, listed, want)
	}
	shoot("oncall")
	require.NoError(t, chromedp.Do(browser, chromedp.EmulateViewport(390, 844)))
	shoot("oncall-phone")
	checkConsole("adding an override")
}
