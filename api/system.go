package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/workflows"
)

// systemCheckRequest is the optional body of POST /v1/system/check.
type systemCheckRequest struct {
	Note string `json:"note"`
}

func (r *systemCheckRequest) validate() *fieldError {
	if !utf8.ValidString(r.Note) || utf8.RuneCountInString(r.Note) > 500 {
		return invalid("note", "must be valid text of at most 500 characters")
	}
	return nil
}

// SystemCheck is the API's view of one system check.
type SystemCheck struct {
	CheckID        string     `json:"check_id"`
	WorkflowID     string     `json:"workflow_id"`
	RunID          string     `json:"run_id,omitempty"`
	Status         string     `json:"status"`
	Note           string     `json:"note"`
	RequestedAt    *time.Time `json:"requested_at,omitempty"`
	RecordedAt     *time.Time `json:"recorded_at,omitempty"`
	WorkerIdentity string     `json:"worker_identity,omitempty"`
	WebUIURL       string     `json:"web_ui_url,omitempty"`
}

// systemCheckWait bounds ?wait=true.
const systemCheckWait = 15 * time.Second

// startSystemCheck starts a SystemCheck workflow: 202 with its id, or, with
// ?wait=true, 200 with the completed check.
func (s *Server) startSystemCheck(c *gin.Context) {
	var req systemCheckRequest
	if !decodeJSON(c, &req, true) {
		return
	}
	if fe := req.validate(); fe != nil {
		abortInvalid(c, fe)
		return
	}
	wait := false
	if v, ok := c.GetQuery("wait"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			abortInvalid(c, invalid("wait", "must be true or false"))
			return
		}
		wait = b
	}

	ctx := c.Request.Context()
	id := uuid.NewString()
	requestedAt := time.Now().UTC()
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       workflows.SystemCheckWorkflowID(id),
		TaskQueue:                                s.taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// A check that cannot finish in five minutes has failed.
		WorkflowExecutionTimeout: 5 * time.Minute,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindSystemCheck)),
	}, workflows.SystemCheck, &workflows.SystemCheckInput{CheckID: id, Note: req.Note, RequestedAt: requestedAt})
	if err != nil {
		s.abortTemporal(c, "start system check", err)
		return
	}
	location := "/v1/system/checks/" + id
	c.Header("Location", location)

	if wait {
		waitCtx, cancel := context.WithTimeout(ctx, systemCheckWait)
		defer cancel()
		var res workflows.SystemCheckResult
		if err := run.Get(waitCtx, &res); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.logger.WarnContext(ctx, "system check failed", "check_id", id, "err", err)
		}
		check, err := s.loadSystemCheck(ctx, id)
		if err != nil {
			s.abortInternal(c, "load system check", err)
			return
		}
		status := http.StatusOK
		if check.Status == "RUNNING" {
			status = http.StatusAccepted
		}
		c.JSON(status, check)
		return
	}
	c.JSON(http.StatusAccepted, SystemCheck{
		CheckID:     id,
		WorkflowID:  run.GetID(),
		RunID:       run.GetRunID(),
		Status:      "RUNNING",
		Note:        req.Note,
		RequestedAt: &requestedAt,
		WebUIURL:    s.workflowURL(run.GetID()),
	})
}

// getSystemCheck returns one check: its row in Postgres and its workflow's
// status in Temporal.
func (s *Server) getSystemCheck(c *gin.Context) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		abortInvalid(c, invalid("id", "must be a UUID"))
		return
	}
	check, err := s.loadSystemCheck(c.Request.Context(), id)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no system check "+id, "")
	case err != nil:
		s.abortTemporal(c, "load system check", err)
	default:
		c.JSON(http.StatusOK, check)
	}
}

type systemCheckRow struct {
	RunID          string    `db:"run_id"`
	Note           string    `db:"note"`
	RequestedAt    time.Time `db:"requested_at"`
	RecordedAt     time.Time `db:"recorded_at"`
	WorkerIdentity string    `db:"worker_identity"`
}

// loadSystemCheck merges the check's row (written by the activity) with its
// workflow's status. It returns *serviceerror.NotFound when neither exists.
func (s *Server) loadSystemCheck(ctx context.Context, id string) (*SystemCheck, error) {
	wfID := workflows.SystemCheckWorkflowID(id)
	check := &SystemCheck{CheckID: id, WorkflowID: wfID, WebUIURL: s.workflowURL(wfID)}

	var row systemCheckRow
	err := s.db.GetContext(ctx, &row, `
		SELECT run_id, note, requested_at, recorded_at, worker_identity
		FROM system_checks WHERE id = $1`, id)
	rowFound := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if rowFound {
		check.RunID, check.Note, check.WorkerIdentity = row.RunID, row.Note, row.WorkerIdentity
		check.RequestedAt, check.RecordedAt = &row.RequestedAt, &row.RecordedAt
	}

	desc, err := s.temporal.DescribeWorkflowExecution(ctx, wfID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound) && rowFound:
		// The run aged out of Temporal's retention; the row remains.
		check.Status = "COMPLETED"
	case err != nil:
		return nil, err
	default:
		info := desc.GetWorkflowExecutionInfo()
		check.RunID = info.GetExecution().GetRunId()
		check.Status = workflowStatus(info.GetStatus())
	}
	return check, nil
}

// workflowStatus names a Temporal execution status without its enum prefix.
func workflowStatus(st enumspb.WorkflowExecutionStatus) string {
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "RUNNING"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "COMPLETED"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "FAILED"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "CANCELED"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "TERMINATED"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "CONTINUED_AS_NEW"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "TIMED_OUT"
	default:
		return "UNKNOWN"
	}
}
