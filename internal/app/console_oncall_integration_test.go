//go:build integration

package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestConsole_ChargeNurseAddsAnOverrideInChromium drives the On call page
// of `vigil dev` in headless Chromium: a charge nurse signs in, adds an
// override through the form (datetime-local inputs on the hospital's
// clock), and sees it listed and covering its role now. Any browser console
// error fails the test; the page's first load (time, bytes) is logged and,
// with VIGIL_SCREENSHOTS_DIR set, it is screenshotted (console-oncall.png,
// console-oncall-phone.png at 390 px).
func TestConsole_ChargeNurseAddsAnOverrideInChromium(t *testing.T) {
	stack := startConsoleStack(t, "devoncall")
	b := stack.openBrowser(t)

	// The charge nurse signs in and opens On call from the navigation.
	b.signIn("/", "c01")
	b.waitText("My work after signing in", func(s string) bool { return strings.Contains(s, "Sign out") })
	b.click(`nav a[href="/ui/oncall"]`)
	text := b.waitText("the On call page", func(s string) bool { return strings.Contains(s, "Add an override") })
	require.Contains(t, text, "Europe/London")
	b.measure("On call")
	current, err := chromedp.Run(b.tab, chromedp.Evaluate[string](`document.querySelector('nav a[aria-current]').textContent`))
	require.NoError(t, err)
	require.Equal(t, "On call", current)
	b.checkConsole("the On call page")

	// She puts N02 on call for NURSE from a minute ago for two hours, on
	// the hospital's clock, through the form.
	now := time.Now().In(stack.cfg.HospitalTZ)
	form := `form[action="/ui/oncall/overrides"]`
	require.NoError(t, chromedp.Do(b.tab,
		chromedp.SetValue(chromedp.CSS(form+` select[name=role]`), "NURSE"),
		chromedp.SetValue(chromedp.CSS(form+` select[name=staff_id]`), "N02"),
		chromedp.SetValue(chromedp.CSS(form+` input[name=starts_at]`), now.Add(-time.Minute).Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.CSS(form+` input[name=ends_at]`), now.Add(2*time.Hour).Format("2006-01-02T15:04")),
		chromedp.SendKeys(chromedp.CSS(form+` input[name=reason]`), "Browser test cover"),
		chromedp.Click(chromedp.CSS(form+` button[type=submit]`)),
	))
	b.waitText("the override added", func(s string) bool { return strings.Contains(s, "Override added.") })
	nurses, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`#r-NURSE`)))
	require.NoError(t, err)
	require.Contains(t, nurses, "(N02)", "N02 covers NURSE now")
	require.Contains(t, nurses, "override")
	listed, err := chromedp.Run(b.tab, chromedp.Text(chromedp.CSS(`#overrides tbody`)))
	require.NoError(t, err)
	for _, want := range []string{"NURSE", "now", "(N02)", "Browser test cover", "(C01)", "Delete"} {
		require.Contains(t, listed, want)
	}
	b.shoot("oncall")
	require.NoError(t, chromedp.Do(b.tab, chromedp.EmulateViewport(390, 844)))
	b.shoot("oncall-phone")
	b.checkConsole("adding an override")
}
