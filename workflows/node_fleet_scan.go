package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/node"
)

// FleetScan scans the broker's fleet once (run by the broker-fleet-scan
// Schedule): one heartbeating activity lists the nodes, fetches each and
// stores its observation and signals its node workflow the reference
// (Signal-With-Start), so the history stays a few events long however many
// nodes there are. The scan id is the run's nominal time and run id: stable
// across the activity's retries, unique per run. (The whole run id: run ids
// are UUIDv7, whose leading digits are a timestamp shared by every run
// started within about a minute.)
func FleetScan(ctx workflow.Context, _ *FleetScanInput) (*FleetScanResult, error) {
	info := workflow.GetInfo(ctx)
	scanID := "scan-" + nominalTime(ctx).Format("20060102T150405Z") + "-" + info.WorkflowExecution.RunID
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// 500 nodes at 16 at a time, six requests each, take well under a
		// minute against a healthy broker; the bound allows a slow one
		// (each request has its own client timeout).
		StartToCloseTimeout: 10 * time.Minute,
		// Every node done heartbeats; a lost worker is noticed in a minute.
		HeartbeatTimeout: time.Minute,
		// Give up before the next scan is due; it starts over anyway.
		ScheduleToCloseTimeout: 14 * time.Minute,
		RetryPolicy: doublingRetry(10*time.Second, 2*time.Minute,
			activities.ErrTypeBrokerAuth, activities.ErrTypeNoBroker, activities.ErrTypeInvalidInput),
	})
	var res node.ScanResult
	started := workflow.Now(ctx)
	workflow.SetCurrentDetails(ctx, "Scanning the broker fleet (scan "+scanID+"); the activity's heartbeat counts the nodes done.")
	ctx = withSummary(ctx, "scan the broker fleet and signal every node")
	if err := workflow.ExecuteActivity(ctx, nodeActivities.ScanFleet, &activities.ScanFleetInput{ScanID: scanID}).Get(ctx, &res); err != nil {
		workflow.SetCurrentDetails(ctx, "Scan "+scanID+" failed: "+err.Error())
		return nil, err
	}
	workflow.GetLogger(ctx).Info("fleet scanned", "scan", scanID, "nodes", res.Nodes, "failed", res.Failed)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Scanned %d node(s), %d partly, in %s (scan %s)",
		res.Nodes, res.Failed, HumanDuration(workflow.Now(ctx).Sub(started)), scanID))
	return &res, nil
}

// FleetScanSummary is a fleet scan's one-line summary in the Web UI.
const FleetScanSummary = "Fleet scan"

// FleetScanDetails are a fleet scan's fixed details in the Web UI.
func FleetScanDetails(every time.Duration) string {
	return "Scans every broker node (node, statistics, resources), stores each observation and signals each node's workflow (node:<id>), every " +
		HumanDuration(every) + " and on POST /v1/nodes/scan. Schedule: " + FleetScanScheduleID + "."
}
