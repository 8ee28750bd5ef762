package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/systemcheck"
	"github.com/vigil-health/vigil/workflows"
)

// systemCheckRequest is the optional body of POST /v1/system/check.
type systemCheckRequest struct {
	Note string `json:"note"`
}

// maxSystemCheckNote bounds a check's note, in characters.
const maxSystemCheckNote = 500

func (r *systemCheckRequest) validate() *fieldError {
	// The note is stored by the check's activity: text Postgres refuses
	// (NUL) would fail that activity on every retry until the workflow
	// timed out, so it is refused here. One line, no control characters.
	if !validText(r.Note, false) || strings.ContainsRune(r.Note, '\t') || utf8.RuneCountInString(r.Note) > maxSystemCheckNote {
		return invalid("note", "must be valid text of at most 500 characters, without control characters")
	}
	return nil
}

// Anonymous system checks. The README's quick start runs a check without a
// token, so the route stays open; but each check is a workflow, so a caller
// without a valid staff token may start only anonSystemChecksPerMinute a
// minute (anonSystemCheckBurst at once) from one client address.
const (
	anonSystemChecksPerMinute = 6
	anonSystemCheckBurst      = 3
)

// anonCheckLimiter is the per-client limit of anonymous system checks,
// created on first use; it also remembers when it last audited each client
// so refusals cannot flood the audit table (one row a minute per client).
type anonCheckLimiter struct {
	once    sync.Once
	limiter *ipLimiter
	mu      sync.Mutex
	audited map[string]time.Time
}

func (a *anonCheckLimiter) init() {
	a.once.Do(func() {
		a.limiter = newIPLimiter(anonSystemChecksPerMinute, anonSystemCheckBurst)
		a.audited = map[string]time.Time{}
	})
}

// allow reports whether ip may start an anonymous check now, else how long
// it should wait.
func (a *anonCheckLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	a.init()
	return a.limiter.allow(ip, now)
}

// shouldAudit reports whether a refusal of ip is the first in a minute.
func (a *anonCheckLimiter) shouldAudit(ip string, now time.Time) bool {
	a.init()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.audited) >= maxIPBuckets {
		for k, at := range a.audited {
			if now.Sub(at) > time.Minute {
				delete(a.audited, k)
			}
		}
	}
	if at, ok := a.audited[ip]; ok && now.Sub(at) < time.Minute {
		return false
	}
	a.audited[ip] = now
	return true
}

// staffCaller reports whether the request carries a valid staff access
// token (live session included); anything else is an anonymous caller.
func (s *Server) staffCaller(c *gin.Context) bool {
	token, ok := auth.ParseBearer(c.GetHeader("Authorization"))
	if !ok || s.Signer == nil {
		return false
	}
	claims, err := s.authenticate(c.Request.Context(), token)
	return err == nil && claims.SubjectType == auth.SubjectStaff
}

// admitSystemCheck applies the anonymous limit: 429 with Retry-After (and
// a rate_limited audit row) when an anonymous client has used its budget.
func (s *Server) admitSystemCheck(c *gin.Context) bool {
	if s.staffCaller(c) {
		return true
	}
	now := time.Now()
	ip := c.ClientIP()
	ok, wait := s.anonChecks.allow(ip, now)
	if ok {
		return true
	}
	if s.anonChecks.shouldAudit(ip, now) {
		s.auditEvent(c, auditRateLimited, auditSubjectClient, ip,
			fmt.Sprintf("anonymous system checks: more than %d a minute", anonSystemChecksPerMinute))
	}
	c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
	abortWithError(c, http.StatusTooManyRequests, CodeRateLimited,
		"too many anonymous system checks from this address; retry later or send a staff token", "")
	return false
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
	req, ok := decodeChecked(c, true, (*systemCheckRequest).validate)
	if !ok {
		return
	}
	wait, fe := boolParam(c, "wait", false)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	if !s.admitSystemCheck(c) {
		return
	}

	ctx := c.Request.Context()
	id := uuid.NewString()
	requestedAt := time.Now().UTC()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       workflows.SystemCheckWorkflowID(id),
		TaskQueue:                                s.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// A check that cannot finish in five minutes has failed.
		WorkflowExecutionTimeout: 5 * time.Minute,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindSystemCheck)),
		StaticSummary:            workflows.SystemCheckSummary,
		StaticDetails:            workflows.SystemCheckDetails(id, requestedAt),
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
		closed, err := awaitClose(waitCtx, s.Temporal, s.Namespace, run.GetID(), run.GetRunID())
		switch {
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			s.Logger.WarnContext(ctx, "system check: wait for the result", "check_id", id, "err", err)
		case closed != nil && closed.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			s.Logger.WarnContext(ctx, "system check failed", "check_id", id, "close_event", closed.GetEventType().String())
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
	switch {
	case workflowGone(err):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no system check "+id, "")
	case err != nil:
		s.abortTemporal(c, "load system check", err)
	default:
		c.JSON(http.StatusOK, check)
	}
}

// loadSystemCheck merges the check's row (written by the activity) with its
// workflow's status. It returns *serviceerror.NotFound when neither exists.
func (s *Server) loadSystemCheck(ctx context.Context, id string) (*SystemCheck, error) {
	wfID := workflows.SystemCheckWorkflowID(id)
	check := &SystemCheck{CheckID: id, WorkflowID: wfID, WebUIURL: s.workflowURL(wfID)}

	row, err := s.Stores.SystemChecks.Check(ctx, id)
	rowFound := err == nil
	if err != nil && !errors.Is(err, systemcheck.ErrNotFound) {
		return nil, err
	}
	if rowFound {
		check.RunID, check.Note, check.WorkerIdentity = row.RunID, row.Note, row.WorkerIdentity
		check.RequestedAt, check.RecordedAt = &row.RequestedAt, &row.RecordedAt
	}

	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, wfID, "")
	switch {
	case workflowGone(err) && rowFound:
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
