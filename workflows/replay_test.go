package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

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
