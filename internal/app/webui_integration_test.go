//go:build integration

package app_test

import (
	"context"
	"encoding/base64"
	"net/url"
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

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/payloadcodec"
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
	stack := startConsoleStack(t, "devwebui")
	// The UI and the API share a host name, so the SameSite=Strict console
	// cookie travels with the UI's codec calls.
	uiHost, apiHost := mustHost(t, stack.TemporalUIURL), mustHost(t, stack.APIURL)
	require.Equal(t, "127.0.0.1", uiHost)
	require.Equal(t, uiHost, apiHost)

	// A fake patient: nothing here is real data.
	suffix := strings.ToUpper(uuid.NewString()[:8])
	patient, room := "TEST-MRN-"+suffix, "TEST-ROOM-"+suffix
	token := login(t, stack.APIURL, "a01", stack.password)
	created := raiseFall(t, stack.APIURL, token, patient, room)
	require.True(t, strings.HasPrefix(created.WebUIURL, stack.TemporalUIURL+"/namespaces/"), created.WebUIURL)
	runPage := created.WebUIURL

	b := stack.openBrowser(t)

	// The run's input as Temporal stores it: ciphertext, which the UI
	// shows as base64 when it cannot decode it.
	ciphertext := base64.StdEncoding.EncodeToString(startInput(t, stack.DevStack, created.WorkflowID).GetData())
	require.NotContains(t, ciphertext, patient)

	// Not signed in: the run's page shows the ciphertext as its input,
	// with the codec's sign-in hint, and the patient id is nowhere on it.
	b.navigate(runPage)
	text := b.waitText("the run's page with the ciphertext and the codec's sign-in hint", func(s string) bool {
		return strings.Contains(s, created.WorkflowID) && strings.Contains(s, "Sign in to Vigil as an admin") &&
			strings.Contains(s, ciphertext[:32])
	})
	require.NotContains(t, text, patient)
	require.NotContains(t, text, room)
	html, err := chromedp.Run(b.tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, patient, "not even hidden in the page")

	// Sign in as the admin, in the same browser, on the UI's host name.
	b.signIn("/ui/login", "a01")
	b.waitText("the console after signing in", func(s string) bool {
		return strings.Contains(s, "Sign out")
	})

	// The same page now decodes the run's input through the codec server.
	b.navigate(runPage)
	text = b.waitText("the decoded input with the patient id", func(s string) bool {
		return strings.Contains(s, created.WorkflowID) && strings.Contains(s, patient)
	})
	require.Contains(t, text, room)
	require.NotContains(t, text, "Sign in to Vigil as an admin")

	b.screenshot(webUIScreenshot, chromedp.CaptureScreenshot())
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

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Hostname()
}
