package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/workflows"
)

const sourceKey = "vigil.source"

// requireAlertSource authenticates an alert source: an API key
// (`Authorization: Bearer vk_...`, stored hashed) or a staff access token (a
// person raising an alert by hand). PagerDuty-style callers may instead put
// the key in the body's routing_key; that handler checks it itself.
func (s *Server) requireAlertSource(allowRoutingKey bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := auth.ParseBearer(c.GetHeader("Authorization"))
		if !ok {
			if allowRoutingKey {
				c.Next() // the handler authenticates routing_key
				return
			}
			s.abortUnauthorized(c, "an API key or staff token is required")
			return
		}
		if _, ok := s.authenticateSource(c, token, "the API key or token is invalid"); ok {
			c.Next()
		}
	}
}

// authenticateSource looks up the alert source token (an API key or a staff
// access token) names and records it as the request's; it answers 401 with
// refusal when token names none. ok is false when it has answered.
func (s *Server) authenticateSource(c *gin.Context, token, refusal string) (src *alertSource, ok bool) {
	src, err := s.sourceFor(c.Request.Context(), token)
	if err != nil {
		s.abortInternal(c, "authenticate alert source", err)
		return nil, false
	}
	if src == nil {
		s.abortUnauthorized(c, refusal)
		return nil, false
	}
	setAlertSource(c, src)
	return src, true
}

// alertSource is the authenticated sender of alerts.
type alertSource struct {
	// Integration scopes the sender's dedup keys and owns the incidents it
	// feeds: workflows.IntegrationAPIKey(id) for an API key,
	// workflows.IntegrationStaff for every staff member.
	Integration string
	// Name is what incident timelines show: "apikey:<name>" or "staff:<id>".
	Name string
	// Staff is the token's claims when a person sends the alert by hand.
	Staff *auth.Claims
}

// who names the sender in audit reasons.
func (a *alertSource) who() string {
	if a.Staff != nil {
		return a.Name
	}
	return a.Integration + " (" + strings.TrimPrefix(a.Name, "apikey:") + ")"
}

// setAlertSource makes src the request's alert source; a staff token also
// becomes the request's principal, so audits name the person.
func setAlertSource(c *gin.Context, src *alertSource) {
	c.Set(sourceKey, src)
	if src.Staff != nil {
		c.Set(principalKey, src.Staff)
	}
}

func alertSourceOf(c *gin.Context) *alertSource {
	v, _ := c.Get(sourceKey)
	src, _ := v.(*alertSource)
	return src
}

// sourceFor authenticates the caller holding token (an API key or a staff
// access token); nil when the token is not valid.
func (s *Server) sourceFor(ctx context.Context, token string) (*alertSource, error) {
	if strings.HasPrefix(token, auth.APIKeyPrefix) {
		key, err := s.referenceStore().APIKeyByToken(ctx, token)
		if errors.Is(err, reference.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up api key: %w", err)
		}
		return &alertSource{Integration: workflows.IntegrationAPIKey(key.ID), Name: "apikey:" + key.Name}, nil
	}
	if s.Signer == nil {
		return nil, nil
	}
	claims, err := s.authenticate(ctx, token)
	var refused *errSessionRefused
	if errors.As(err, &refused) || (err == nil && claims.SubjectType != auth.SubjectStaff) {
		return nil, nil // an invalid or revoked token is an answer, not a failure
	}
	if err != nil {
		return nil, err
	}
	return &alertSource{Integration: workflows.IntegrationStaff, Name: "staff:" + claims.Subject, Staff: claims}, nil
}

// alertRequest is the body of POST /v1/alerts.
type alertRequest struct {
	AlertType  string     `json:"alert_type"`
	PatientID  string     `json:"patient_id"`
	Room       string     `json:"room"`
	Value      jsonScalar `json:"value"`
	Source     string     `json:"source"`
	ObservedAt string     `json:"observed_at"`
	DedupKey   string     `json:"dedup_key"`
	// AlertID is the sender's id of the alert: an idempotency key, like
	// the Idempotency-Key header.
	AlertID string `json:"alert_id"`
}

// jsonScalar accepts a JSON string or number (monitors send either) and keeps
// its text.
type jsonScalar struct {
	set  bool
	text string
}

// UnmarshalJSON implements json.Unmarshaler.
func (j *jsonScalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &j.text); err != nil {
			return err
		}
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		j.text = n.String()
	default:
		return &json.UnmarshalTypeError{Value: string(b), Type: reflectString}
	}
	j.set = true
	return nil
}

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	maxFutureSkew   = 5 * time.Minute
	maxAlertAge     = 7 * 24 * time.Hour
	reflectString   = reflect.TypeOf("")
	alertTypeMaxAge = 10 * time.Second
)

// alert is a validated alert, ready for its incident workflow.
type alert struct {
	AlertType  string
	Severity   string
	PatientID  string
	Room       string
	Value      string
	Source     string
	ObservedAt time.Time
	DedupKey   string
	ReceivedAt time.Time
	// Integration is the sender's scope (alertSource.Integration).
	Integration string
	// IdempotencyKey is the sender's key for the alert (Idempotency-Key,
	// alert_id, or an Alertmanager alert's fingerprint and startsAt); empty
	// when none. Only its hash (IdempotencyKeyHash) leaves the API.
	IdempotencyKey string
}

// validateAlert checks a request against the catalogue; prefix is prepended
// to field names (for batch payloads).
func (s *Server) validateAlert(ctx context.Context, r *alertRequest, prefix string, now time.Time) (*alert, *fieldError, error) {
	f := func(name string) string { return prefix + name }
	a := &alert{ReceivedAt: now}
	r.AlertType = strings.ToUpper(strings.TrimSpace(r.AlertType))
	if r.AlertType == "" {
		return nil, invalid(f("alert_type"), "is required"), nil
	}
	sev, ok, err := s.catalogue.severity(ctx, s, r.AlertType)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, invalid(f("alert_type"), "is not in the alert catalogue (GET /v1/alert-types)"), nil
	}
	a.AlertType, a.Severity = r.AlertType, sev
	if a.PatientID = strings.TrimSpace(r.PatientID); a.PatientID == "" {
		return nil, invalid(f("patient_id"), "is required"), nil
	}
	if !idPattern.MatchString(a.PatientID) {
		return nil, invalid(f("patient_id"), "must be 1-64 letters, digits, '_', '-', '.', ':'"), nil
	}
	for _, t := range []struct{ field, value string }{
		{"room", r.Room}, {"value", r.Value.text}, {"source", r.Source}, {"dedup_key", r.DedupKey},
	} {
		if !validText(t.value, false) {
			return nil, invalid(f(t.field), "must be text without control characters"), nil
		}
	}
	if a.Room = strings.TrimSpace(r.Room); a.Room == "" {
		return nil, invalid(f("room"), "is required"), nil
	}
	if utf8.RuneCountInString(a.Room) > 64 {
		return nil, invalid(f("room"), "must be at most 64 characters"), nil
	}
	if !r.Value.set {
		return nil, invalid(f("value"), "is required (a string or a number)"), nil
	}
	if a.Value = r.Value.text; utf8.RuneCountInString(a.Value) > 128 {
		return nil, invalid(f("value"), "must be at most 128 characters"), nil
	}
	if a.Source = strings.TrimSpace(r.Source); a.Source == "" {
		return nil, invalid(f("source"), "is required"), nil
	}
	if utf8.RuneCountInString(a.Source) > 128 {
		return nil, invalid(f("source"), "must be at most 128 characters"), nil
	}
	if r.ObservedAt == "" {
		return nil, invalid(f("observed_at"), "is required (RFC 3339, e.g. 2026-11-22T09:00:00Z)"), nil
	}
	t, err := time.Parse(time.RFC3339Nano, r.ObservedAt)
	if err != nil {
		return nil, invalid(f("observed_at"), "must be an RFC 3339 time, e.g. 2026-11-22T09:00:00Z"), nil
	}
	switch {
	case t.After(now.Add(maxFutureSkew)):
		return nil, invalid(f("observed_at"), "is in the future"), nil
	case t.Before(now.Add(-maxAlertAge)):
		return nil, invalid(f("observed_at"), "is more than 7 days old"), nil
	}
	a.ObservedAt = t.UTC()
	a.DedupKey = strings.TrimSpace(r.DedupKey)
	if utf8.RuneCountInString(a.DedupKey) > 255 {
		return nil, invalid(f("dedup_key"), "must be at most 255 characters"), nil
	}
	if a.DedupKey == "" {
		a.DedupKey = a.PatientID + ":" + a.AlertType
	}
	return a, nil, nil
}

// AlertResponse answers an alert.
type AlertResponse struct {
	// Result is "created" (a new incident, 201), "merged" (into the open
	// incident of the dedup key, 200), "duplicate" (its idempotency key was
	// already counted by that incident; nothing changed, 200) or "accepted"
	// (the incident workflow took it durably but its outcome was not known
	// in time, 202; incident fields are then empty).
	Result         string `json:"result"`
	IncidentID     string `json:"incident_id,omitempty"`
	IncidentStatus string `json:"incident_status,omitempty"`
	AlertCount     int    `json:"alert_count,omitempty"`
	WorkflowID     string `json:"workflow_id"`
	WebUIURL       string `json:"web_ui_url,omitempty"`
}

// Results of an alert (AlertResponse.Result).
const (
	alertCreated   = "created"
	alertMerged    = "merged"
	alertDuplicate = "duplicate"
	alertAccepted  = "accepted"
)

// DefaultAlertWait is how long an alert request waits for its incident
// workflow (Deps.AlertWait): first for the workflow to accept the alert,
// then for its outcome. Accepted but no outcome in time is 202; not
// accepted in time is 504 maybe_applied.
const DefaultAlertWait = 30 * time.Second

// alertAnswerMargin is kept back from a request's wait so that the outcome
// reaches the request before it gives up (at most a quarter of the wait).
const alertAnswerMargin = time.Second

// retryAfterMaybeApplied is the Retry-After (seconds) of a 504 maybe_applied.
const retryAfterMaybeApplied = 5

// CodeMaybeApplied is the error code of an alert whose outcome was not known
// in time: it may have been applied, and a retry with the same idempotency
// key is safe.
const CodeMaybeApplied = "maybe_applied"

// Outcomes of updateWithStart that are not a result.
var (
	// errMaybeApplied: the incident workflow did not accept the alerts in
	// time; it may still do so.
	errMaybeApplied = errors.New("the incident workflow did not accept the alert in time; it may still be applied")
	// errAlertAccepted: the incident workflow accepted the alerts (they are
	// in its history) but their outcome was not known in time.
	errAlertAccepted = errors.New("the incident workflow accepted the alert; its outcome was not known in time")
)

// alertTimedOut reports whether err (from ingest) means the alert's outcome
// is unknown because the wait ran out, and whether it was certainly never
// sent.
func alertTimedOut(err error) (timedOut, notSent bool) {
	switch {
	case errors.Is(err, errNotSent):
		return true, true
	case errors.Is(err, errMaybeApplied), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true, false
	}
	return false, false
}

// MaybeAppliedBody is the 504 of an alert whose outcome was not known in
// time: ErrorBody's shape, with the code maybe_applied.
type MaybeAppliedBody struct {
	Error MaybeAppliedDetail `json:"error"`
}

// MaybeAppliedDetail is an ErrorDetail with when to retry.
type MaybeAppliedDetail struct {
	ErrorDetail
	// RetryAfter is the Retry-After header's seconds.
	RetryAfter int `json:"retry_after"`
	// WorkflowID is the incident workflow the alert was sent to.
	WorkflowID string `json:"workflow_id,omitempty"`
}

// maybeApplied is the detail of a 504 maybe_applied.
func maybeApplied(c *gin.Context, message, workflowID string) MaybeAppliedDetail {
	return MaybeAppliedDetail{
		ErrorDetail: ErrorDetail{Code: CodeMaybeApplied, Message: message, RequestID: requestID(c)},
		RetryAfter:  retryAfterMaybeApplied, WorkflowID: workflowID,
	}
}

// abortMaybeApplied answers 504 maybe_applied with Retry-After: the alert
// was not confirmed in time and may have been applied; a retry with the
// same idempotency key is counted once. A timeout is never a 500.
func (s *Server) abortMaybeApplied(c *gin.Context, workflowID string, err error) {
	s.Logger.WarnContext(c.Request.Context(), "alert outcome unknown", "err", err, "workflow_id", workflowID, "request_id", requestID(c))
	c.Header("Retry-After", strconv.Itoa(retryAfterMaybeApplied))
	c.AbortWithStatusJSON(http.StatusGatewayTimeout, MaybeAppliedBody{Error: maybeApplied(c,
		"the incident workflow did not confirm the alert in time; it may have been applied; retry with the same Idempotency-Key (or alert_id)",
		workflowID)})
}

// maxIdempotencyKey bounds an idempotency key (Idempotency-Key, alert_id).
const maxIdempotencyKey = 255

// idempotencyKeyHeader carries a sender's idempotency key.
const idempotencyKeyHeader = "Idempotency-Key"

// validIdempotencyKey reports whether k is 1 to 255 printable characters,
// not only spaces.
func validIdempotencyKey(k string) bool {
	if strings.TrimSpace(k) == "" || utf8.RuneCountInString(k) > maxIdempotencyKey || !utf8.ValidString(k) {
		return false
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// headerIdempotencyKey is the request's Idempotency-Key header ("" when
// absent), or a field error naming it.
func headerIdempotencyKey(c *gin.Context) (string, *fieldError) {
	vals := c.Request.Header.Values(idempotencyKeyHeader)
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", invalid(idempotencyKeyHeader, "must be sent once")
	case !validIdempotencyKey(vals[0]):
		return "", invalid(idempotencyKeyHeader, "must be 1 to 255 printable characters")
	}
	return vals[0], nil
}

// alertIdempotencyKey is the idempotency key of a POST /v1/alerts request:
// the Idempotency-Key header or the body's alert_id ("" when neither).
func alertIdempotencyKey(c *gin.Context, alertID string) (string, *fieldError) {
	header, fe := headerIdempotencyKey(c)
	if fe != nil {
		return "", fe
	}
	if alertID != "" && !validIdempotencyKey(alertID) {
		return "", invalid("alert_id", "must be 1 to 255 printable characters")
	}
	if header != "" && alertID != "" && header != alertID {
		return "", invalid(idempotencyKeyHeader, "differs from alert_id; send one of them, or the same value")
	}
	return cmp.Or(header, alertID), nil
}

// postAlert ingests one alert. It answers within the alert wait: 201
// created, 200 merged or duplicate, 202 accepted, or 504 maybe_applied.
func (s *Server) postAlert(c *gin.Context) {
	var req alertRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.AlertWait)
	defer cancel()
	idem, fe := alertIdempotencyKey(c, req.AlertID)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	a, fe, err := s.validateAlert(ctx, &req, "", time.Now().UTC())
	if err != nil {
		s.abortInternal(c, "validate alert", err)
		return
	}
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	a.Integration, a.IdempotencyKey = alertSourceOf(c).Integration, idem
	res, ok := s.ingestOne(ctx, c, a, "ingest alert")
	if !ok {
		return
	}
	status := http.StatusOK
	switch res.Result {
	case alertCreated:
		status = http.StatusCreated
		c.Header("Location", "/v1/incidents/"+res.IncidentID)
	case alertAccepted:
		status = http.StatusAccepted
	}
	c.JSON(status, res)
}

// alertWorkflowID is the incident workflow of a's dedup key.
func (s *Server) alertWorkflowID(a *alert) string {
	return workflows.IncidentWorkflowID(workflows.ScopedDedupKeyHash(a.Integration, a.DedupKey))
}

// ingestOne ingests the alert of a one-alert request (what): it answers
// 504 maybe_applied when the workflow did not accept it in time and the
// Temporal error when it failed; ok is false when it has answered.
func (s *Server) ingestOne(ctx context.Context, c *gin.Context, a *alert, what string) (res *AlertResponse, ok bool) {
	res, err := s.ingest(ctx, a)
	if timedOut, _ := alertTimedOut(err); timedOut {
		s.abortMaybeApplied(c, s.alertWorkflowID(a), err)
		return nil, false
	}
	if err != nil {
		s.abortTemporal(c, what, err)
		return nil, false
	}
	return res, true
}

// ingest hands an alert to its incident workflow through the coalescer. The
// dedup key is scoped to the sending integration: alerts from different
// integrations never merge, and each owns its incidents. ctx's deadline is
// the request's wait: an alert accepted by the workflow whose outcome is not
// known by then is answered "accepted"; one not accepted by then returns an
// error for which alertTimedOut is true.
func (s *Server) ingest(ctx context.Context, a *alert) (*AlertResponse, error) {
	if a.Integration == "" {
		return nil, errors.New("alert has no integration scope")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.AlertWait)
		defer cancel()
	}
	s.incidentMetrics().AlertReceived(a.Severity)
	key := workflows.ScopedDedupKeyHash(a.Integration, a.DedupKey)
	wfID := workflows.IncidentWorkflowID(key)
	res, index, err := s.alerts.submit(ctx, key, a)
	if errors.Is(err, errAlertAccepted) {
		return &AlertResponse{Result: alertAccepted, WorkflowID: wfID, WebUIURL: s.workflowURL(wfID)}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &AlertResponse{
		Result: alertMerged, IncidentID: res.IncidentID, IncidentStatus: res.Status, AlertCount: res.AlertCount,
		WorkflowID: wfID, WebUIURL: s.workflowURL(wfID),
	}
	switch {
	case slices.Contains(res.Duplicates, index):
		out.Result = alertDuplicate
	case res.Created && index == 0:
		out.Result = alertCreated
		s.incidentMetrics().IncidentOpened(a.Severity)
	}
	return out, nil
}

// sendAlerts delivers one coalesced batch with Update-With-Start: the first
// alert of a dedup key starts its incident workflow, later ones join it.
// ctx's deadline bounds the whole delivery.
func (s *Server) sendAlerts(ctx context.Context, key string, batch []*alert) (workflows.AlertResult, error) {
	first, last := batch[0], batch[len(batch)-1]
	update := &workflows.AlertUpdate{Count: len(batch), Value: last.Value, ObservedAt: last.ObservedAt}
	for i, a := range batch {
		if a.ObservedAt.After(update.ObservedAt) {
			update.ObservedAt = a.ObservedAt
		}
		if a.IdempotencyKey != "" {
			if update.IdempotencyKeys == nil {
				update.IdempotencyKeys = make([]string, len(batch))
			}
			update.IdempotencyKeys[i] = workflows.IdempotencyKeyHash(a.Integration, a.IdempotencyKey)
		}
	}
	var res workflows.AlertResult
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		res, err = s.updateWithStart(ctx, key, first, update)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != workflows.RejectClosed {
			return res, err
		}
		// The incident was just resolved and its run is finishing; the next
		// attempt starts a new incident once it has.
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return res, fmt.Errorf("%w: %w", errNotSent, err) // refused, not applied
		}
	}
	return res, err
}

// updateWithStart sends one alert update and waits, within ctx, first for
// the workflow to accept it, then for its result. Not accepted in time is
// errMaybeApplied; accepted without a result in time is errAlertAccepted.
func (s *Server) updateWithStart(ctx context.Context, key string, first *alert, u *workflows.AlertUpdate) (workflows.AlertResult, error) {
	var res workflows.AlertResult
	h, err := s.Temporal.UpdateWithStartWorkflow(ctx, workflows.AlertWithStart(s.Temporal, s.TaskQueue, &workflows.IncidentInput{
		IncidentID: uuid.NewString(), DedupKeyHash: key, AlertType: first.AlertType, Severity: first.Severity,
		PatientID: first.PatientID, Room: first.Room, Source: first.Source, OpenedAt: first.ReceivedAt,
		Integration: first.Integration, UnscopedKeyHash: workflows.DedupKeyHash(first.DedupKey),
		StableOKWait: s.AutoResolveWait,
	}, u))
	if err != nil {
		if waitRanOut(ctx, err) {
			return res, fmt.Errorf("%w: %w", errMaybeApplied, err)
		}
		return res, err
	}
	if err := h.Get(ctx, &res); err != nil {
		if waitRanOut(ctx, err) {
			return res, fmt.Errorf("%w: %w", errAlertAccepted, err)
		}
		return res, err
	}
	return res, nil
}

// waitRanOut reports whether err ended a wait on the incident workflow
// because ctx's deadline passed. The server may give up a moment before the
// client does, so its timeout counts too.
func waitRanOut(ctx context.Context, err error) bool {
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	return ctx.Err() != nil || errors.As(err, &timeout)
}

// sourceResolved tells the open incident of src's dedup key that src reports
// the condition cleared; it reports whether src has such an incident. No open
// incident is not an error. Staff callers never get here (see
// refuseStaffSourceAction).
func (s *Server) sourceResolved(ctx context.Context, src *alertSource, dedupKey string) (bool, error) {
	err := s.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(workflows.ScopedDedupKeyHash(src.Integration, dedupKey)), "",
		workflows.IncidentSignalSourceResolved, &workflows.SourceResolvedSignal{Integration: src.Integration, Source: src.Name})
	if workflowGone(err) {
		return false, nil
	}
	return err == nil, err
}

// alertCatalogue caches alert type severities for a few seconds: every alert
// is checked against the catalogue, and the catalogue rarely changes.
type alertCatalogue struct {
	mu       sync.Mutex
	loadedAt time.Time
	types    map[string]string
}

func (ac *alertCatalogue) severity(ctx context.Context, s *Server, alertType string) (string, bool, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if ac.types == nil || time.Since(ac.loadedAt) > alertTypeMaxAge {
		types, err := s.referenceStore().AlertTypeSeverities(ctx)
		if err != nil {
			return "", false, fmt.Errorf("load alert catalogue: %w", err)
		}
		ac.types = types
		ac.loadedAt = time.Now()
	}
	sev, ok := ac.types[alertType]
	return sev, ok, nil
}
