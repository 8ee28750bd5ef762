package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/vigil-health/vigil/internal/payloadcodec"
	"github.com/vigil-health/vigil/internal/temporalclient"
	vigilworker "github.com/vigil-health/vigil/worker"
)

var (
	anyCtx   = mock.Anything
	anyInput = mock.Anything
)

// TestReplay replays every recorded history in testdata/ against today's
// workflow code: a change that would break running workflows fails here.
// Histories are recorded from real runs by the integration tests with
// VIGIL_RECORD_HISTORIES=1 (see the README).
func TestReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			vigilworker.RegisterWorkflows(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// TestReplay_ThroughTheCodec replays every recorded history with the
// converters Vigil's clients use (payloadcodec): as recorded, in clear, as
// histories written before encryption was turned on still are; and with
// every payload encrypted (search attributes excepted, as the SDK leaves
// them), as histories are written now.
func TestReplay_ThroughTheCodec(t *testing.T) {
	k, err := payloadcodec.NewKey("replay")
	require.NoError(t, err)
	codec, err := payloadcodec.NewCodec([]payloadcodec.Key{k})
	require.NoError(t, err)
	dc := codec.DataConverter()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			replay := func(encrypt bool) error {
				file, err := os.Open(f)
				require.NoError(t, err)
				defer func() { _ = file.Close() }()
				hist, err := client.HistoryFromJSON(file, client.HistoryJSONOptions{})
				require.NoError(t, err)
				if encrypt {
					encrypted := 0
					require.NoError(t, proxy.VisitPayloads(context.Background(), hist, proxy.VisitPayloadsOptions{
						SkipSearchAttributes: true,
						Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
							encrypted += len(ps)
							return codec.Encode(ps)
						},
					}))
					require.Positive(t, encrypted, "the history has payloads to encrypt")
					// Without the codec the encrypted history does not
					// replay: the test would notice a converter that
					// skipped decoding.
					plain := worker.NewWorkflowReplayer()
					vigilworker.RegisterWorkflows(plain)
					require.Error(t, plain.ReplayWorkflowHistory(nil, hist), "an encrypted history needs the codec")
				}
				r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
					DataConverter:    dc,
					FailureConverter: temporalclient.FailureConverter(dc),
				})
				require.NoError(t, err)
				vigilworker.RegisterWorkflows(r)
				return r.ReplayWorkflowHistory(nil, hist)
			}
			require.NoError(t, replay(false), "recorded in clear")
			require.NoError(t, replay(true), "encrypted")
		})
	}
}
