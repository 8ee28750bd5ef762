package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/workflows"
)

// slackAckTimeout bounds the acknowledgement: Slack gives up on an
// interaction that is not answered within 3 seconds.
const slackAckTimeout = 2500 * time.Millisecond

// Answers to Slack interactions; Slack shows them only to the person who
// clicked.
const (
	slackNotLinked   = "Your Slack account is not linked to a Vigil staff member."
	slackUnknown     = "Vigil does not know this incident."
	slackClosed      = "This incident is already closed."
	slackUnconfirmed = "Vigil did not confirm the acknowledgement in time; check the incident in Vigil."
)

// SlackReply answers a Slack interaction with a message for the person who
// clicked (Slack expects 200 whatever the outcome).
type SlackReply struct {
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	Text            string `json:"text"`
}

// slackInteraction is the part of Slack's block_actions payload Vigil reads.
type slackInteraction struct {
	Type string `json:"type"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// slackRoutes registers Slack's interaction callback. It is not
// bearer-authenticated: Slack signs every request with the app's signing
// secret, and the route answers 503 while no secret is configured.
func (s *Server) slackRoutes(v1 *gin.RouterGroup) {
	v1.POST("/slack/interactions", s.slackInteractions)
}

// slackInteractions handles a click on an incident message's Acknowledge
// button: it verifies Slack's signature over the raw body, maps the Slack
// user to a staff member through staff.slack_user_id and sends the incident
// workflow the acknowledge update as that person.
func (s *Server) slackInteractions(c *gin.Context) {
	if s.SlackSigningSecret == "" {
		abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "the Slack integration is not configured", "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			abortWithError(c, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the body is too large", "")
			return
		}
		abortWithError(c, http.StatusBadRequest, CodeInvalidField, "the body could not be read", "")
		return
	}
	if err := slacknotify.VerifyRequest(s.SlackSigningSecret, c.Request.Header, body, time.Now()); err != nil {
		s.Logger.WarnContext(c.Request.Context(), "slack interaction refused", "reason", err.Error(), "request_id", requestID(c))
		msg := "the Slack signature is invalid"
		switch {
		case errors.Is(err, slacknotify.ErrMissingSignature):
			msg = "the Slack signature headers are missing"
		case errors.Is(err, slacknotify.ErrStaleTimestamp):
			msg = "the Slack request timestamp is missing, stale or in the future"
		}
		abortWithError(c, http.StatusUnauthorized, CodeUnauthorized, msg, "")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		abortWithError(c, http.StatusBadRequest, CodeInvalidField, "a form-encoded payload is required", "payload")
		return
	}
	// Signed is not the same as valid: the payload's text is checked like
	// any JSON body before a string of it reaches Postgres.
	payload := []byte(form.Get("payload"))
	if path, bad := jsonTextFault(payload); bad {
		abortWithError(c, http.StatusBadRequest, CodeInvalidField, jsonTextMessage, joinJSONPath("payload", path))
		return
	}
	var in slackInteraction
	if err := json.Unmarshal(payload, &in); err != nil {
		abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, "the payload is not valid JSON", "payload")
		return
	}
	var incidentID string
	found := false
	for _, a := range in.Actions {
		if a.ActionID == slacknotify.ActionAcknowledge {
			incidentID, found = a.Value, true
			break
		}
	}
	if in.Type != "block_actions" || !found {
		// Nothing Vigil acts on; Slack only needs the 200.
		c.Status(http.StatusOK)
		return
	}
	s.slackAcknowledge(c, in.User.ID, incidentID)
}

// slackAcknowledge acknowledges incidentID as the staff member linked to
// the Slack user.
func (s *Server) slackAcknowledge(c *gin.Context, slackUserID, incidentID string) {
	ctx := c.Request.Context()
	staff, err := s.referenceStore().AccountBySlackUser(ctx, slackUserID)
	if s.lookupFailed(c, "look up slack user", err, reference.ErrNotFound, func() { s.slackReply(c, slackNotLinked) }) {
		return
	}
	if _, err := uuid.Parse(incidentID); err != nil {
		s.slackReply(c, slackUnknown)
		return
	}
	workflowID, _, err := s.incidentStore().Workflow(ctx, incidentID)
	if s.lookupFailed(c, "look up incident", err, incident.ErrNotFound, func() { s.slackReply(c, slackUnknown) }) {
		return
	}

	ctx, cancel := context.WithTimeout(ctx, slackAckTimeout)
	defer cancel()
	var res workflows.TransitionResult
	if s.TransitionKeys == nil {
		s.abortInternal(c, "acknowledge incident from slack", errNoTransitionKeys)
		return
	}
	// One acknowledgement per person and incident: Slack's retries of a
	// slow answer and repeated clicks become the same update.
	h, err := s.Temporal.UpdateWorkflow(ctx, workflows.TransitionUpdate(s.TransitionKeys, workflowID,
		workflows.IncidentUpdateAcknowledge, "slack-ack:"+incidentID+":"+staff.ID, &workflows.TransitionRequest{
			IncidentID: incidentID,
			Actor:      workflows.Actor{StaffID: staff.ID, Access: staff.Access},
		}))
	if err == nil {
		err = h.Get(ctx, &res)
	}
	var appErr *temporal.ApplicationError
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case err == nil:
		s.Logger.InfoContext(ctx, "incident acknowledged from slack", "incident_id", incidentID, "staff_id", staff.ID, "request_id", requestID(c))
		s.slackReply(c, "Acknowledged. The incident is now "+res.Status+" and assigned to you.")
	case rejectedAs(err, workflows.RejectClosed), workflowGone(err):
		s.slackReply(c, slackClosed)
	case errors.As(err, &appErr):
		s.slackReply(c, "Could not acknowledge: "+appErr.Message())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &deadline), ctx.Err() != nil && c.Request.Context().Err() == nil:
		s.slackReply(c, slackUnconfirmed)
	default:
		s.abortTemporal(c, "acknowledge incident from slack", err)
	}
}

// slackReply answers 200 with a message only the clicker sees.
func (s *Server) slackReply(c *gin.Context, text string) {
	c.JSON(http.StatusOK, SlackReply{ResponseType: "ephemeral", ReplaceOriginal: false, Text: text})
}
