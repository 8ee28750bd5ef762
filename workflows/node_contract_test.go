package workflows_test

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/workflows"
)

// TestNodeContractMatchesTheCapability checks that the names the fleet scan
// signals and starts node workflows with (package node) are the workflow's.
func TestNodeContractMatchesTheCapability(t *testing.T) {
	registered := runtime.FuncForPC(reflect.ValueOf(workflows.NodeMonitor).Pointer()).Name()
	registered = registered[strings.LastIndex(registered, ".")+1:]
	tests := []struct {
		name       string
		capability string
		workflow   string
	}{
		{"workflow name", node.MonitorWorkflow, registered},
		{"VigilKind", node.WorkflowKind, workflows.KindNode},
		{"observation signal", node.SignalObservation, workflows.SignalNodeObservation},
		{"workflow id", node.WorkflowID("7"), workflows.NodeWorkflowID("7")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.capability, tt.workflow)
		})
	}
}
