//go:build integration

package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/temporalclient"
	"github.com/vigil-health/vigil/workflows"
)

// TestDev_PayloadsEncryptedAcrossRestarts: `vigil dev` with no key
// configured makes one in its data directory, its Web UI is told to decode
// through the API's codec server (with the browser's credentials), the
// history holds only ciphertext, and after a restart on the same data
// directory what was written before still decodes.
func TestDev_PayloadsEncryptedAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	cfg, _ := devConfig(t, "devcodec", map[string]string{"VIGIL_DEMO": "false"})
	require.Empty(t, cfg.PayloadKeys)
	stack := startDev(t, cfg, slog.LevelWarn)
	st, err := os.Stat(app.DevPayloadKeyFile(cfg))
	require.NoError(t, err, "the dev key is kept beside the Temporal data")
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// The Web UI decodes through the API, on the UI's own host name, with
	// the browser's cookies.
	require.True(t, strings.HasSuffix(stack.CodecEndpoint, "/codec"), stack.CodecEndpoint)
	require.True(t, strings.HasPrefix(stack.APIURL, "http://127.0.0.1:"), stack.APIURL)
	require.Equal(t, stack.APIURL+"/codec", stack.CodecEndpoint)
	var settings struct {
		Codec struct {
			Endpoint           string
			IncludeCredentials bool
			PassAccessToken    bool
			DefaultErrorLink   string
		}
	}
	require.Equal(t, http.StatusOK, get(t, stack.TemporalUIURL+"/api/v1/settings", &settings))
	require.Equal(t, stack.CodecEndpoint, settings.Codec.Endpoint)
	require.True(t, settings.Codec.IncludeCredentials)
	require.False(t, settings.Codec.PassAccessToken, "the UI's own token is not Vigil's")
	require.Equal(t, stack.APIURL+"/ui/login", settings.Codec.DefaultErrorLink)
	// ...and the API lets the UI's origin call it with credentials.
	req, err := http.NewRequestWithContext(ctx, "OPTIONS", stack.CodecEndpoint+"/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", stack.TemporalUIURL)
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, stack.TemporalUIURL, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))

	note := "dev-codec-" + uuid.NewString()
	resp, err = http.Post(stack.APIURL+"/v1/system/check?wait=true", "application/json", strings.NewReader(`{"note":"`+note+`"}`)) //nolint:noctx // test
	require.NoError(t, err)
	var check struct {
		CheckID    string `json:"check_id"`
		WorkflowID string `json:"workflow_id"`
		Status     string `json:"status"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&check))
	_ = resp.Body.Close()
	require.Equal(t, "COMPLETED", check.Status)

	// Raw history: the note is not there.
	plain, err := client.DialContext(ctx, client.Options{HostPort: stack.TemporalAddress, Namespace: stack.Namespace, Logger: quietSDKLogger{}})
	require.NoError(t, err)
	var raw []byte
	it := plain.GetWorkflowHistory(ctx, check.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		b, err := proto.Marshal(ev)
		require.NoError(t, err)
		raw = append(raw, b...)
	}
	plain.Close()
	require.NotEmpty(t, raw)
	require.NotContains(t, string(raw), note)
	require.Contains(t, string(raw), "binary/encrypted")

	stack.Stop()

	// Restarted on the same data directory, the stack reads what it wrote.
	stack = startDev(t, cfg, slog.LevelWarn)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tc, err := temporalclient.Dial(tctx, stack.TemporalAddress, stack.Namespace, stderrLogger(slog.LevelWarn), temporalclient.WithDataConverter(stack.DataConverter))
	require.NoError(t, err)
	defer tc.Close()
	var result workflows.SystemCheckResult
	require.NoError(t, tc.GetWorkflow(tctx, check.WorkflowID, "").Get(tctx, &result))
	require.Equal(t, check.CheckID, result.CheckID)
	it = tc.GetWorkflowHistory(tctx, check.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	require.NoError(t, err)
	var in workflows.SystemCheckInput
	require.NoError(t, stack.DataConverter.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	require.Equal(t, note, in.Note)
}

// quietSDKLogger drops the SDK's log lines.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}
