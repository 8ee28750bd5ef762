package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/systemcheck"
)

// SystemCheckWorkflowID returns the workflow ID of the system check checkID.
func SystemCheckWorkflowID(checkID string) string {
	return "system-check:" + checkID
}

// SystemCheckInput starts a system check.
type SystemCheckInput struct {
	// CheckID is the check's UUID, chosen by the API.
	CheckID string
	// Note is free text from the operator who asked for the check.
	Note string
	// RequestedAt is when the API accepted the request.
	RequestedAt time.Time
}

// SystemCheckResult is what a completed check proves: a worker ran the
// activity and Postgres stored its row.
type SystemCheckResult struct {
	CheckID        string
	RecordedAt     time.Time
	WorkerIdentity string
}

// SystemCheckSummary is a system check's one-line summary in the Web UI.
const SystemCheckSummary = "System check"

// SystemCheckDetails are a system check's fixed details in the Web UI (the
// operator's note is not among them: it is free text).
func SystemCheckDetails(checkID string, requestedAt time.Time) string {
	return "Proves the path API → Temporal → worker → Postgres: one activity writes the check's row (system_checks " +
		checkID + ").\nRequested: " + clock(requestedAt)
}

// SystemCheck proves the whole path API -> Temporal -> worker -> Postgres by
// having one activity write one row.
func SystemCheck(ctx workflow.Context, in *SystemCheckInput) (*SystemCheckResult, error) {
	if in == nil || in.CheckID == "" {
		return nil, temporal.NewNonRetryableApplicationError("check id is required", "InvalidInput", errors.New("empty check id"))
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// One INSERT: anything slower than this means Postgres is in trouble.
		StartToCloseTimeout: 10 * time.Second,
		// Give up after a minute, so a broken database shows up as a failed
		// check instead of a check that never ends.
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy:            doublingRetry(time.Second, 10*time.Second),
	})
	exec := workflow.GetInfo(ctx).WorkflowExecution
	var db *activities.Database
	var rec systemcheck.Recorded
	workflow.SetCurrentDetails(ctx, "Recording the check in Postgres")
	err := workflow.ExecuteActivity(withSummary(ctx, "record the check in Postgres"), db.RecordSystemCheck, &systemcheck.RecordInput{
		CheckID:     in.CheckID,
		WorkflowID:  exec.ID,
		RunID:       exec.RunID,
		Note:        in.Note,
		RequestedAt: in.RequestedAt,
	}).Get(ctx, &rec)
	if err != nil {
		return nil, err
	}
	workflow.GetLogger(ctx).Info("system check recorded", "check_id", in.CheckID)
	workflow.SetCurrentDetails(ctx, "Recorded at "+clock(rec.RecordedAt)+" by worker "+rec.WorkerIdentity)
	return &SystemCheckResult{
		CheckID:        in.CheckID,
		RecordedAt:     rec.RecordedAt,
		WorkerIdentity: rec.WorkerIdentity,
	}, nil
}
