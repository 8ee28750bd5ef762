package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/workflows"
)

// watchRoutes registers capacity watch management. Reading needs any staff
// token; changing watches needs charge (or admin) access.
func (s *Server) watchRoutes(v1 *gin.RouterGroup) {
	read, manage := s.requireStaff(), s.requireStaff(watchManageAccess)
	v1.POST("/watches", manage, s.createWatch)
	v1.GET("/watches", read, s.listWatches)
	v1.GET("/watches/:id", read, s.getWatch)
	v1.PATCH("/watches/:id", manage, s.patchWatch)
	v1.DELETE("/watches/:id", manage, s.deleteWatch)
	v1.POST("/watches/:id/pause", manage, s.watchLifecycle(workflows.WatchUpdatePause, "paused"))
	v1.POST("/watches/:id/resume", manage, s.watchLifecycle(workflows.WatchUpdateResume, "active"))
	v1.GET("/watches/:id/statuses", read, s.watchStatuses)
}

// watchManageAccess is the access level that may change watches (admins
// may too).
const watchManageAccess = auth.AccessCharge

// watchRequest is the body of POST /v1/watches and PATCH /v1/watches/{id}
// (where every field is optional and kind cannot change).
type watchRequest struct {
	Kind            *string        `json:"kind"`
	ServiceID       *string        `json:"service_id"`
	Search          *searchRequest `json:"search"`
	Description     *string        `json:"description"`
	IntervalSeconds *int           `json:"interval_seconds"`
	SlackChannel    *string        `json:"slack_channel"`
	SMSNumbers      *[]string      `json:"sms_numbers"`
	RecoveryPolls   *int           `json:"recovery_polls"`
}

type searchRequest struct {
	Postcode      string   `json:"postcode"`
	DistanceMiles int      `json:"distance_miles"`
	ServiceTypes  []string `json:"service_types"`
	ResultsLimit  int      `json:"results_limit"`
	GP            string   `json:"gp"`
	SearchRole    string   `json:"search_role"`
}

// WatchView is the API's view of a watch.
type WatchView struct {
	ID              string                 `json:"id"`
	Kind            string                 `json:"kind"`
	ServiceID       string                 `json:"service_id,omitempty"`
	Search          *directory.SearchQuery `json:"search,omitempty"`
	Description     string                 `json:"description"`
	IntervalSeconds int                    `json:"interval_seconds"`
	SlackChannel    string                 `json:"slack_channel"`
	SMSNumbers      []string               `json:"sms_numbers"`
	RecoveryPolls   int                    `json:"recovery_polls"`
	State           string                 `json:"state"`
	// StateChangedBy is who last paused or resumed the watch: a staff id
	// (through this API) or operator:<name> (through a Temporal signal),
	// at StateChangedAt, for StateReason (signals only).
	StateChangedBy string     `json:"state_changed_by,omitempty"`
	StateChangedAt *time.Time `json:"state_changed_at,omitempty"`
	StateReason    string     `json:"state_reason,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	WorkflowID     string     `json:"workflow_id"`
	WebUIURL       string     `json:"web_ui_url,omitempty"`
}

var (
	// ukPostcode is the UK postcode format (outward and inward code).
	ukPostcode  = regexp.MustCompile(`^(GIR 0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})$`)
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	slackID     = regexp.MustCompile(`^[CG][A-Z0-9]{6,20}$`)
	directoryID = regexp.MustCompile(`^[0-9]{1,12}$`)
	searchRole  = regexp.MustCompile(`^[A-Z][A-Z_]{1,39}$`)
)

// config merges req into base and validates the result, naming the field.
func (r *watchRequest) config(base workflows.WatchConfig) (workflows.WatchConfig, *fieldError) {
	c := base
	if r.Kind != nil {
		c.Kind = *r.Kind
	}
	switch c.Kind {
	case workflows.WatchKindService, workflows.WatchKindSearch:
	default:
		return c, invalid("kind", "must be service or search")
	}
	if r.ServiceID != nil {
		c.ServiceID = strings.TrimSpace(*r.ServiceID)
	}
	if r.Search != nil {
		sr := r.Search
		pc := strings.ToUpper(strings.Join(strings.Fields(sr.Postcode), " "))
		if !ukPostcode.MatchString(pc) {
			return c, invalid("search.postcode", "must be a UK postcode such as LS1 4AP")
		}
		if sr.DistanceMiles < 1 || sr.DistanceMiles > 100 {
			return c, invalid("search.distance_miles", "must be 1 to 100")
		}
		if len(sr.ServiceTypes) == 0 {
			return c, invalid("search.service_types", "must name at least one service type")
		}
		for _, t := range sr.ServiceTypes {
			if _, ok := directory.ServiceTypes[t]; !ok {
				return c, invalid("search.service_types", "unknown service type "+t)
			}
		}
		if sr.ResultsLimit == 0 {
			sr.ResultsLimit = 10
		}
		if sr.ResultsLimit < 1 || sr.ResultsLimit > 100 {
			return c, invalid("search.results_limit", "must be 1 to 100")
		}
		if sr.GP != "" && !directoryID.MatchString(sr.GP) {
			return c, invalid("search.gp", "must be a directory id (digits)")
		}
		if sr.SearchRole == "" {
			sr.SearchRole = "CAPMON" // the seed's search account
		}
		if !searchRole.MatchString(sr.SearchRole) {
			return c, invalid("search.search_role", "must be a directory role such as CAPMON")
		}
		c.Search = directory.SearchQuery{Postcode: pc, DistanceMiles: sr.DistanceMiles, ServiceTypes: sr.ServiceTypes,
			ResultsLimit: sr.ResultsLimit, GP: sr.GP, Role: sr.SearchRole}
	}
	switch c.Kind {
	case workflows.WatchKindService:
		if !directoryID.MatchString(c.ServiceID) {
			return c, invalid("service_id", "must be a directory service id (digits)")
		}
	case workflows.WatchKindSearch:
		if c.Search.Postcode == "" {
			return c, invalid("search", "is required for a search watch")
		}
	}
	if r.Description != nil {
		if !validText(*r.Description, false) || utf8.RuneCountInString(*r.Description) > 200 {
			return c, invalid("description", "must be at most 200 characters of text without control characters")
		}
		c.Description = *r.Description
	}
	if r.IntervalSeconds != nil {
		// Checked before multiplying: a huge value would wrap around.
		if *r.IntervalSeconds < 60 || *r.IntervalSeconds > 86400 {
			return c, invalid("interval_seconds", "must be 60 to 86400")
		}
		c.Interval = time.Duration(*r.IntervalSeconds) * time.Second
	}
	if c.Interval == 0 {
		c.Interval = workflows.DefaultWatchInterval
	}
	if c.Interval < workflows.MinWatchInterval || c.Interval > 24*time.Hour {
		return c, invalid("interval_seconds", "must be 60 to 86400")
	}
	if r.SlackChannel != nil {
		if *r.SlackChannel != "" && !slackID.MatchString(*r.SlackChannel) {
			return c, invalid("slack_channel", "must be a Slack channel id such as C0123456789")
		}
		c.SlackChannel = *r.SlackChannel
	}
	if r.SMSNumbers != nil {
		for _, n := range *r.SMSNumbers {
			if !e164.MatchString(n) {
				return c, invalid("sms_numbers", "must be E.164 numbers such as +447700900001")
			}
		}
		c.SMSNumbers = *r.SMSNumbers
	}
	if r.RecoveryPolls != nil {
		c.RecoveryPolls = *r.RecoveryPolls
	}
	if c.RecoveryPolls == 0 {
		c.RecoveryPolls = 1
	}
	if c.RecoveryPolls < 1 || c.RecoveryPolls > 20 {
		return c, invalid("recovery_polls", "must be 1 to 20")
	}
	if c.Description == "" {
		c.Description = describeWatch(c)
	}
	return c, nil
}

func describeWatch(c workflows.WatchConfig) string {
	if c.Kind == workflows.WatchKindService {
		return "service " + c.ServiceID
	}
	return fmt.Sprintf("types %s within %d miles of %s", strings.Join(c.Search.ServiceTypes, ","), c.Search.DistanceMiles, c.Search.Postcode)
}

// createWatch stores the watch and starts its workflow (watch:<id>) in one
// step: if the workflow cannot start, nothing is stored.
func (s *Server) createWatch(c *gin.Context) {
	var req watchRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	if req.Kind == nil {
		abortInvalid(c, invalid("kind", "is required: service or search"))
		return
	}
	cfg, fe := req.config(workflows.WatchConfig{})
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	id, err := s.startWatch(c.Request.Context(), principal(c).Subject, cfg)
	if err != nil {
		s.abortWatchChange(c, "store watch", err)
		return
	}
	view, err := s.loadWatch(c, id)
	if err != nil {
		s.abortInternal(c, "load watch", err)
		return
	}
	answerCreated(c, "/v1/watches/"+id, view)
}

// watchWorkflowError is a watch change its workflow refused or could not
// take (start, Update, stop), as opposed to a store failure.
type watchWorkflowError struct {
	// update: an Update of the running workflow (its refusals map like
	// incident transitions'); otherwise a start or stop.
	update bool
	err    error
}

func (e *watchWorkflowError) Error() string { return "watch workflow: " + e.err.Error() }
func (e *watchWorkflowError) Unwrap() error { return e.err }

// startWatch stores a watch of cfg created by createdBy and starts its
// workflow (watch:<id>) in one step: if the workflow cannot start, nothing
// is stored (a *watchWorkflowError). It returns the new watch's id.
func (s *Server) startWatch(ctx context.Context, createdBy string, cfg workflows.WatchConfig) (string, error) {
	id := uuid.NewString()
	var startErr error
	started := false
	err := s.watchStore().Create(ctx, watchSettings(id, createdBy, cfg), func() error {
		_, startErr = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       workflows.WatchWorkflowID(id),
			TaskQueue:                                s.TaskQueue,
			WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			TypedSearchAttributes: temporal.NewSearchAttributes(
				workflows.VigilKindKey.ValueSet(workflows.KindWatch),
				workflows.WatchIDKey.ValueSet(id),
				workflows.WatchStateKey.ValueSet(workflows.WatchActive),
			),
			StaticSummary: workflows.WatchSummary(cfg),
			StaticDetails: workflows.WatchDetails(id, createdBy, cfg),
		}, workflows.Watch, &workflows.WatchInput{WatchID: id, Config: cfg})
		started = startErr == nil
		return startErr
	})
	switch {
	case startErr != nil:
		return "", &watchWorkflowError{err: fmt.Errorf("start watch: %w", startErr)}
	case err != nil && started:
		// The workflow started but its row did not land: stop the workflow
		// so no watch polls and notifies with nothing behind it.
		_ = s.Temporal.TerminateWorkflow(context.WithoutCancel(ctx), workflows.WatchWorkflowID(id), "", "watch row not stored")
		return "", fmt.Errorf("commit watch: %w", err)
	case err != nil:
		return "", fmt.Errorf("store watch: %w", err)
	}
	return id, nil
}

// abortWatchChange answers a failed watch change: the workflow's refusal
// or failure as the API maps them, a store failure as internal.
func (s *Server) abortWatchChange(c *gin.Context, what string, err error) {
	var wf *watchWorkflowError
	switch {
	case errors.As(err, &wf) && wf.update && workflowGone(err):
		abortWithError(c, http.StatusConflict, CodeConflict, "the watch is not running", "")
	case errors.As(err, &wf) && wf.update:
		s.abortTransition(c, wf.err)
	case errors.As(err, &wf):
		s.abortTemporal(c, what, wf.err)
	default:
		s.abortInternal(c, what, err)
	}
}

// watchStore is the capacity watch store.
func (s *Server) watchStore() *watch.Store {
	return s.Stores.Watches
}

// watchSettings is the row of a watch with the configuration cfg.
func watchSettings(id, createdBy string, cfg workflows.WatchConfig) watch.Watch {
	return watch.Watch{ID: id, Config: cfg, CreatedBy: createdBy}
}

func (s *Server) view(w watch.Watch) WatchView {
	v := WatchView{
		ID: w.ID, Kind: w.Kind, ServiceID: w.ServiceID, Description: w.Description,
		IntervalSeconds: int(w.Interval / time.Second), SlackChannel: w.SlackChannel, SMSNumbers: nonNil(w.SMSNumbers),
		RecoveryPolls: w.RecoveryPolls, State: w.State, StateChangedBy: w.StateChangedBy, StateChangedAt: w.StateChangedAt,
		StateReason: w.StateReason, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	if v.Kind == workflows.WatchKindSearch {
		search := w.Search
		v.Search = &search
	}
	v.WorkflowID = workflows.WatchWorkflowID(v.ID)
	v.WebUIURL = s.workflowURL(v.WorkflowID)
	return v
}

func (v WatchView) config() workflows.WatchConfig {
	c := workflows.WatchConfig{
		Kind: v.Kind, ServiceID: v.ServiceID, Description: v.Description,
		Interval: time.Duration(v.IntervalSeconds) * time.Second, SlackChannel: v.SlackChannel,
		SMSNumbers: v.SMSNumbers, RecoveryPolls: v.RecoveryPolls,
	}
	if v.Search != nil {
		c.Search = *v.Search
	}
	return c
}

// loadWatch reads a watch; watch.ErrNotFound when there is none (or it
// was deleted).
func (s *Server) loadWatch(c *gin.Context, id string) (WatchView, error) {
	w, err := s.watchStore().Get(c.Request.Context(), id)
	if err != nil {
		return WatchView{}, err
	}
	return s.view(w), nil
}

func (s *Server) listWatches(c *gin.Context) {
	listByOffset(s, c, "list watches", s.watchStore().List, s.view)
}

// watchID validates the path id and loads the watch, answering 400/404.
func (s *Server) watchID(c *gin.Context) (WatchView, bool) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		abortInvalid(c, invalid("id", "must be a UUID"))
		return WatchView{}, false
	}
	v, err := s.loadWatch(c, id)
	if errors.Is(err, watch.ErrNotFound) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no watch "+id, "")
		return WatchView{}, false
	}
	if err != nil {
		s.abortInternal(c, "load watch", err)
		return WatchView{}, false
	}
	return v, true
}

func (s *Server) getWatch(c *gin.Context) {
	if v, ok := s.watchID(c); ok {
		c.JSON(http.StatusOK, v)
	}
}

// patchWatch changes a watch: the running workflow takes the new
// configuration through an Update (whose validator has the last word), and
// the row is changed in the same transaction.
func (s *Server) patchWatch(c *gin.Context) {
	v, ok := s.watchID(c)
	if !ok {
		return
	}
	var req watchRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	fe, err := s.reconfigureWatch(c.Request.Context(), v, req)
	switch {
	case fe != nil:
		abortInvalid(c, fe)
		return
	case err != nil:
		s.abortWatchChange(c, "update watch", err)
		return
	}
	s.getWatch(c)
}

// reconfigureWatch merges req onto the watch v and hands the result to its
// workflow: an invalid request is a *fieldError, a refused or failed Update
// a *watchWorkflowError.
func (s *Server) reconfigureWatch(ctx context.Context, v WatchView, req watchRequest) (*fieldError, error) {
	if req.Kind != nil && *req.Kind != v.Kind {
		return invalid("kind", "cannot change; create a new watch"), nil
	}
	// The store merges onto the row as it is now, locked, so two
	// concurrent PATCHes of different fields do not undo each other; the
	// row changes only if the workflow takes the new configuration.
	var (
		fe  *fieldError
		cfg workflows.WatchConfig
	)
	err := s.watchStore().Update(ctx, v.ID, func(current watch.Watch) (watch.Watch, error) {
		cfg, fe = req.config(s.view(current).config())
		if fe != nil {
			return current, fe
		}
		return watchSettings(current.ID, current.CreatedBy, cfg), nil
	}, func(watch.Watch) error {
		return s.sendWatchUpdate(ctx, v.ID, workflows.WatchUpdateConfigure, cfg)
	})
	if fe != nil {
		return fe, nil
	}
	return nil, err
}

// sendWatchUpdate sends an Update to the watch's workflow and waits for it;
// a failure is a *watchWorkflowError.
func (s *Server) sendWatchUpdate(ctx context.Context, id, name string, args ...any) error {
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.WatchWorkflowID(id), UpdateName: name, Args: args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		return &watchWorkflowError{update: true, err: err}
	}
	return nil
}

// setWatchState pauses or resumes the watch id through its workflow's
// Update and records the state, with who changed it.
func (s *Server) setWatchState(ctx context.Context, id, update, state, by string) error {
	if err := s.sendWatchUpdate(ctx, id, update); err != nil {
		return err
	}
	return s.watchStore().SetState(ctx, id, state, by)
}

// watchLifecycle pauses or resumes a watch through its workflow's Update and
// records the state, with who changed it. (An operator's signal of the
// same name makes the same change; the workflow records it.)
func (s *Server) watchLifecycle(update, state string) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, ok := s.watchID(c)
		if !ok {
			return
		}
		if err := s.setWatchState(c.Request.Context(), v.ID, update, state, actor(c)); err != nil {
			s.abortWatchChange(c, "update watch state", err)
			return
		}
		s.getWatch(c)
	}
}

// deleteWatch stops the watch's workflow and marks it deleted; its history
// (snapshots, changes) stays.
func (s *Server) deleteWatch(c *gin.Context) {
	v, ok := s.watchID(c)
	if !ok {
		return
	}
	if err := s.removeWatch(c.Request.Context(), v.ID); err != nil {
		s.abortWatchChange(c, "delete watch", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// removeWatch stops the watch's workflow (one already stopped is fine) and
// marks it deleted; a failure to stop is a *watchWorkflowError.
func (s *Server) removeWatch(ctx context.Context, id string) error {
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.WatchWorkflowID(id), UpdateName: workflows.WatchUpdateStop,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil && !workflowGone(err) { // already stopped: deleting still succeeds
		return &watchWorkflowError{err: fmt.Errorf("stop watch: %w", err)}
	}
	return s.watchStore().MarkDeleted(ctx, id)
}

// watchStatuses answers from the workflow itself (a Query): the live view.
func (s *Server) watchStatuses(c *gin.Context) {
	v, ok := s.watchID(c)
	if !ok {
		return
	}
	res, err := s.Temporal.QueryWorkflow(c.Request.Context(), workflows.WatchWorkflowID(v.ID), "", workflows.WatchQueryStatuses)
	if err != nil {
		s.abortTemporal(c, "query watch", err)
		return
	}
	var st workflows.WatchState
	if err := res.Get(&st); err != nil {
		s.abortInternal(c, "decode watch state", err)
		return
	}
	services := make([]gin.H, 0, len(st.Services))
	for _, sv := range st.Services {
		services = append(services, gin.H{"service_id": sv.ServiceID, "name": sv.Name, "region": sv.Region, "type": sv.Type,
			"capacity": sv.Capacity, "rag": sv.RAG, "pending": sv.Pending, "pending_polls": sv.Streak})
	}
	c.JSON(http.StatusOK, gin.H{"watch_id": v.ID, "paused": st.Paused, "degraded": st.Degraded, "last_error": st.LastError,
		"polls": st.Polls, "last_poll_at": st.LastPollAt, "services": services})
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
