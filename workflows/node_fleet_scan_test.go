package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/workflows"
)

func TestFleetScan(t *testing.T) {
	tests := []struct {
		name      string
		scheduled bool
		errs      []error // answers of successive attempts before success
		wantCalls int
		wantErr   string
	}{
		{"one scan", false, nil, 1, ""},
		{"scan id from the scheduled time", true, nil, 1, ""},
		{"a broker hiccup is retried with the same scan id", false, []error{errors.New("broker: 503")}, 2, ""},
		{"a refused admin key is not retried", false, []error{
			temporal.NewNonRetryableApplicationError("the broker refused the admin key", activities.ErrTypeBrokerAuth, nil),
		}, 1, "refused the admin key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(capacityStart)
			if tt.scheduled {
				require.NoError(t, env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledKey.ValueSet(scheduledAt))))
			}
			var a *activities.Nodes
			env.RegisterActivity(a)
			var ids []string
			env.OnActivity(a.ScanFleet, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in *activities.ScanFleetInput) (*node.ScanResult, error) {
					ids = append(ids, in.ScanID)
					if len(ids) <= len(tt.errs) {
						return nil, tt.errs[len(ids)-1]
					}
					return &node.ScanResult{ScanID: in.ScanID, Nodes: 3, Failed: 1}, nil
				})
			env.ExecuteWorkflow(workflows.FleetScan, &workflows.FleetScanInput{})
			require.True(t, env.IsWorkflowCompleted())
			require.Len(t, ids, tt.wantCalls)
			for _, id := range ids {
				require.Equal(t, ids[0], id, "every attempt has the same scan id")
			}
			at := capacityStart
			if tt.scheduled {
				at = scheduledAt
			}
			require.True(t, strings.HasPrefix(ids[0], "scan-"+at.Format("20060102T150405Z")+"-"), ids[0])
			if tt.wantErr != "" {
				require.ErrorContains(t, env.GetWorkflowError(), tt.wantErr)
				return
			}
			require.NoError(t, env.GetWorkflowError())
			var res workflows.FleetScanResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.Equal(t, 3, res.Nodes)
			require.Equal(t, 1, res.Failed)
		})
	}
}
