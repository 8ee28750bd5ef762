package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/workflows"
)

// incidentActionRoutes registers the state changes of an incident. Each is
// an Update on the incident's workflow: its validator rejects an illegal
// transition with the reason (409), an actor without the right (403) or a
// malformed request (400) before anything is written.
func (s *Server) incidentActionRoutes(v1 *gin.RouterGroup) {
	staff := s.requireStaff()
	v1.POST("/incidents/:id/acknowledge", staff, s.transition(workflows.IncidentUpdateAcknowledge, false))
	v1.POST("/incidents/:id/start", staff, s.transition(workflows.IncidentUpdateStart, false))
	v1.POST("/incidents/:id/resolve", staff, s.transition(workflows.IncidentUpdateResolve, true))
	v1.POST("/incidents/:id/claim", staff, s.transition(workflows.IncidentUpdateClaim, false))
	v1.POST("/incidents/:id/reassign", staff, s.transition(workflows.IncidentUpdateReassign, true))
	v1.POST("/incidents/:id/notes", staff, s.transition(workflows.IncidentUpdateNote, true))
}

// transitionRequest is the body of the transition endpoints; which fields a
// transition needs depends on it.
type transitionRequest struct {
	ResolutionNotes string `json:"resolution_notes"`
	StaffID         string `json:"staff_id"`
	Note            string `json:"note"`
}

// TransitionResponse answers a state change.
type TransitionResponse struct {
	IncidentID     string    `json:"incident_id"`
	PreviousStatus string    `json:"previous_status"`
	Status         string    `json:"status"`
	AssignedTo     string    `json:"assigned_to,omitempty"`
	At             time.Time `json:"at"`
}

func (s *Server) transition(update string, needsBody bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if _, err := uuid.Parse(id); err != nil {
			abortInvalid(c, invalid("id", "must be a UUID"))
			return
		}
		var body transitionRequest
		if !decodeJSON(c, &body, !needsBody) {
			return
		}
		res, fe, err := s.applyTransition(c.Request.Context(), update, id, principal(c), body)
		switch {
		case fe != nil:
			abortInvalid(c, fe)
		case err != nil:
			s.abortTransitionFailure(c, err)
		default:
			c.JSON(http.StatusOK, TransitionResponse{
				IncidentID: res.IncidentID, PreviousStatus: res.PreviousStatus, Status: res.Status,
				AssignedTo: res.AssignedTo, At: res.At,
			})
		}
	}
}

// transitionRefusal is a transition refused before it reached the
// workflow: no such incident, or a resolved one.
type transitionRefusal struct {
	status  int
	code    string
	message string
}

func (e *transitionRefusal) Error() string { return e.message }

// transitionFailure is a transition that failed: what failed (for the
// log) and whether the error came from the workflow Update (whose
// rejections carry the workflow's reason, see abortTransition).
type transitionFailure struct {
	what   string
	update bool
	err    error
}

func (e *transitionFailure) Error() string { return e.what + ": " + e.err.Error() }
func (e *transitionFailure) Unwrap() error { return e.err }

// applyTransition checks a staff member's state change of an incident and
// sends it to the incident's workflow as a signed Update: the one path of
// the JSON endpoints and the console's forms. It returns the result, or a
// field error for bad input, or an error: a *transitionRefusal, or a
// *transitionFailure (whose Update errors carry the workflow's rejection).
func (s *Server) applyTransition(ctx context.Context, update, id string, p *auth.Claims, body transitionRequest) (*workflows.TransitionResult, *fieldError, error) {
	req := &workflows.TransitionRequest{
		IncidentID: id,
		Actor:      workflows.Actor{StaffID: p.Subject, Access: p.Access},
	}
	if !validText(body.ResolutionNotes, true) {
		return nil, invalid("resolution_notes", "must be text without control characters"), nil
	}
	if !validText(body.Note, true) {
		return nil, invalid("note", "must be text without control characters"), nil
	}
	if !validText(body.StaffID, false) {
		return nil, invalid("staff_id", "must be text without control characters"), nil
	}
	switch update {
	case workflows.IncidentUpdateResolve:
		if strings.TrimSpace(body.ResolutionNotes) == "" {
			return nil, invalid("resolution_notes", "is required"), nil
		}
		if n := len([]rune(strings.TrimSpace(body.ResolutionNotes))); n < workflows.MinResolutionNotes || n > workflows.MaxNoteLength {
			return nil, invalid("resolution_notes", "must be 10 to 2000 characters"), nil
		}
		req.Notes = body.ResolutionNotes
	case workflows.IncidentUpdateNote:
		if n := len([]rune(strings.TrimSpace(body.Note))); n == 0 || n > workflows.MaxNoteLength {
			return nil, invalid("note", "must be 1 to 2000 characters"), nil
		}
		req.Notes = body.Note
	case workflows.IncidentUpdateReassign:
		if body.StaffID == "" {
			return nil, invalid("staff_id", "is required"), nil
		}
		exists, err := s.referenceStore().StaffExists(ctx, body.StaffID)
		if err != nil {
			return nil, nil, &transitionFailure{what: "look up staff", err: err}
		}
		if !exists {
			return nil, invalid("staff_id", "is not a staff member"), nil
		}
		req.ToStaffID = body.StaffID
	}

	wfID, status, err := s.incidentStore().Workflow(ctx, id)
	if errors.Is(err, incident.ErrNotFound) {
		return nil, nil, &transitionRefusal{status: http.StatusNotFound, code: CodeNotFound, message: "no incident " + id}
	}
	if err != nil {
		return nil, nil, &transitionFailure{what: "look up incident", err: err}
	}
	if status == workflows.StatusResolved {
		return nil, nil, &transitionRefusal{status: http.StatusConflict, code: CodeConflict, message: "the incident is resolved"}
	}
	if s.TransitionKeys == nil {
		return nil, nil, &transitionFailure{what: "incident update", err: errNoTransitionKeys}
	}
	var res workflows.TransitionResult
	for attempt := 0; ; attempt++ {
		h, err := s.Temporal.UpdateWorkflow(ctx, workflows.TransitionUpdate(s.TransitionKeys, wfID, update, "", req))
		if err == nil {
			err = h.Get(ctx, &res)
		}
		if err == nil {
			return &res, nil, nil
		}
		if attempt < ackCatchUpAttempts && s.pagedBeforeTheRunKnew(ctx, update, id, p.Subject, err) {
			select {
			case <-ctx.Done():
			case <-time.After(ackCatchUpWait):
				continue
			}
		}
		return nil, nil, &transitionFailure{what: "incident update", update: true, err: err}
	}
}

// The escalation dispatcher pages a due step from Postgres before the
// run's own timer task has run; until it has, the run does not know the
// person it paged, and refuses their acknowledgement. Such an
// acknowledgement is tried again, ackCatchUpAttempts times ackCatchUpWait
// apart (5 s in all), while the run catches up.
const (
	ackCatchUpAttempts = 20
	ackCatchUpWait     = 250 * time.Millisecond
)

// pagedBeforeTheRunKnew reports whether err is the run's refusal of an
// acknowledgement by staffID whom Vigil has already paged for the incident.
func (s *Server) pagedBeforeTheRunKnew(ctx context.Context, update, incidentID, staffID string, err error) bool {
	var appErr *temporal.ApplicationError
	if update != workflows.IncidentUpdateAcknowledge || !errors.As(err, &appErr) || appErr.Type() != workflows.RejectForbidden {
		return false
	}
	paged, lookupErr := s.incidentStore().WasPaged(ctx, incidentID, staffID)
	return lookupErr == nil && paged
}

// abortTransitionFailure answers an error of applyTransition.
func (s *Server) abortTransitionFailure(c *gin.Context, err error) {
	var refusal *transitionRefusal
	var failure *transitionFailure
	switch {
	case errors.As(err, &refusal):
		abortWithError(c, refusal.status, refusal.code, refusal.message, "")
	case errors.As(err, &failure) && failure.update:
		s.abortTransition(c, failure.err)
	case errors.As(err, &failure):
		s.abortInternal(c, failure.what, failure.err)
	default:
		s.abortInternal(c, "incident update", err)
	}
}

// transitionRejection is the status and message of a transition the
// workflow or applyTransition refused (ok false for a failure that is not
// a refusal: a store or Temporal error), as abortTransition maps them.
func transitionRejection(err error) (status int, message string, ok bool) {
	var refusal *transitionRefusal
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &refusal):
		return refusal.status, refusal.message, true
	case errors.As(err, &appErr):
		switch appErr.Type() {
		case workflows.RejectForbidden:
			return http.StatusForbidden, appErr.Message(), true
		case workflows.RejectInvalid:
			return http.StatusBadRequest, appErr.Message(), true
		case workflows.RejectIllegal, workflows.RejectClosed:
			return http.StatusConflict, appErr.Message(), true
		}
	case workflowGone(err):
		return http.StatusConflict, "the incident is resolved", true
	}
	return 0, "", false
}

// abortTransition maps a rejected or failed update to its answer.
func (s *Server) abortTransition(c *gin.Context, err error) {
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr):
		switch appErr.Type() {
		case workflows.RejectForbidden:
			abortWithError(c, http.StatusForbidden, CodeForbidden, appErr.Message(), "")
		case workflows.RejectInvalid:
			abortWithError(c, http.StatusBadRequest, CodeInvalidField, appErr.Message(), "")
		case workflows.RejectIllegal, workflows.RejectClosed:
			abortWithError(c, http.StatusConflict, CodeConflict, appErr.Message(), "")
		default:
			s.abortInternal(c, "incident update", err)
		}
	case workflowGone(err):
		// The run finished (resolved) between our read and the update.
		abortWithError(c, http.StatusConflict, CodeConflict, "the incident is resolved", "")
	default:
		s.abortTemporal(c, "incident update", err)
	}
}

// errNoTransitionKeys: the API was built without VIGIL_TRANSITION_SECRET,
// so it cannot prove the transitions it authorises (configuration refuses
// to start a process so; only a test wiring can do it).
var errNoTransitionKeys = errors.New("no transition proof key configured")
