package testenv

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/worker"
)

// ReplayAndRecord replays a finished run's real history (runID "" means the
// latest run) against today's workflow code and, with
// VIGIL_RECORD_HISTORIES=1, stores it as workflows/testdata/<file> for the
// replay unit test.
func (e *Env) ReplayAndRecord(t testing.TB, workflowID, runID, file string) {
	t.Helper()
	hist := &historypb.History{}
	it := e.Client.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	// The replayer changes the history it is given (upserted search
	// attributes are merged into the started event's), so it replays a copy
	// and the recording stays the server's.
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r)
	require.NoError(t, r.ReplayWorkflowHistory(nil, proto.Clone(hist).(*historypb.History)))

	if file == "" || os.Getenv("VIGIL_RECORD_HISTORIES") != "1" {
		return
	}
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "..", "workflows", "testdata")
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), append(data, '\n'), 0o644))
}
