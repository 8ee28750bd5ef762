package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

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
		p := principal(c)
		req := &workflows.TransitionRequest{
			IncidentID: id,
			Actor:      workflows.Actor{StaffID: p.Subject, Access: p.Access},
		}
		ctx := c.Request.Context()
		if !validText(body.ResolutionNotes, true) {
			abortInvalid(c, invalid("resolution_notes", "must be text without control characters"))
			return
		}
		if !validText(body.Note, true) {
			abortInvalid(c, invalid("note", "must be text without control characters"))
			return
		}
		if !validText(body.StaffID, false) {
			abortInvalid(c, invalid("staff_id", "must be text without control characters"))
			return
		}
		switch update {
		case workflows.IncidentUpdateResolve:
			if strings.TrimSpace(body.ResolutionNotes) == "" {
				abortInvalid(c, invalid("resolution_notes", "is required"))
				return
			}
			if n := len([]rune(strings.TrimSpace(body.ResolutionNotes))); n < workflows.MinResolutionNotes || n > workflows.MaxNoteLength {
				abortInvalid(c, invalid("resolution_notes", "must be 10 to 2000 characters"))
				return
			}
			req.Notes = body.ResolutionNotes
		case workflows.IncidentUpdateNote:
			if n := len([]rune(strings.TrimSpace(body.Note))); n == 0 || n > workflows.MaxNoteLength {
				abortInvalid(c, invalid("note", "must be 1 to 2000 characters"))
				return
			}
			req.Notes = body.Note
		case workflows.IncidentUpdateReassign:
			if body.StaffID == "" {
				abortInvalid(c, invalid("staff_id", "is required"))
				return
			}
			exists, err := s.referenceStore().StaffExists(ctx, body.StaffID)
			if err != nil {
				s.abortInternal(c, "look up staff", err)
				return
			}
			if !exists {
				abortInvalid(c, invalid("staff_id", "is not a staff member"))
				return
			}
			req.ToStaffID = body.StaffID
		}

		wfID, status, err := s.incidentStore().Workflow(ctx, id)
		if errors.Is(err, incident.ErrNotFound) {
			abortWithError(c, http.StatusNotFound, CodeNotFound, "no incident "+id, "")
			return
		}
		if err != nil {
			s.abortInternal(c, "look up incident", err)
			return
		}
		if status == workflows.StatusResolved {
			abortWithError(c, http.StatusConflict, CodeConflict, "the incident is resolved", "")
			return
		}
		if s.transitionKeys == nil {
			s.abortInternal(c, "incident update", errNoTransitionKeys)
			return
		}
		h, err := s.temporal.UpdateWorkflow(ctx, workflows.TransitionUpdate(s.transitionKeys, wfID, update, "", req))
		var res workflows.TransitionResult
		if err == nil {
			err = h.Get(ctx, &res)
		}
		if err != nil {
			s.abortTransition(c, err)
			return
		}
		c.JSON(http.StatusOK, TransitionResponse{
			IncidentID: res.IncidentID, PreviousStatus: res.PreviousStatus, Status: res.Status,
			AssignedTo: res.AssignedTo, At: res.At,
		})
	}
}

// abortTransition maps a rejected or failed update to its answer.
func (s *Server) abortTransition(c *gin.Context, err error) {
	var appErr *temporal.ApplicationError
	var notFound *serviceerror.NotFound
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
	case errors.As(err, &notFound):
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
