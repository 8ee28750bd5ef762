package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/workflows"
)

// alertmanagerPayload is Prometheus Alertmanager's webhook body (version 4).
type alertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []alertmanagerAlert `json:"alerts"`
}

type alertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// BatchResult counts what a webhook batch did.
type BatchResult struct {
	Received int `json:"received"`
	Created  int `json:"created"`
	Merged   int `json:"merged"`
	Resolved int `json:"resolved"`
	// Ignored counts resolve events for which no incident was open.
	Ignored int `json:"ignored"`
}

// postAlertmanager accepts Alertmanager's webhook. Labels map to the alert:
// alert_type (or alertname), patient_id, room, value, dedup_key (default: the
// fingerprint, which Alertmanager keeps stable from firing to resolved).
// Every alert is validated before any is processed, so a bad one rejects the
// batch whole. Resolved alerts resolve their incident after the stable-OK
// wait; only the integration (API key) that fed an incident may resolve it, so
// a resolved alert for another's incident, or sent with a staff token, is
// ignored like one for no open incident, and audited.
func (s *Server) postAlertmanager(c *gin.Context) {
	var p alertmanagerPayload
	if !decodeJSON(c, &p, false) {
		return
	}
	if len(p.Alerts) == 0 {
		abortInvalid(c, invalid("alerts", "must hold at least one alert"))
		return
	}
	ctx := c.Request.Context()
	now := time.Now().UTC()
	type item struct {
		firing bool
		alert  *alert
		key    string
	}
	items := make([]item, 0, len(p.Alerts))
	for i, am := range p.Alerts {
		prefix := fmt.Sprintf("alerts[%d].", i)
		labels := am.Labels
		alertType := labels["alert_type"]
		if alertType == "" {
			alertType = labels["alertname"]
		}
		dedup := labels["dedup_key"]
		if dedup == "" {
			dedup = am.Fingerprint
		}
		switch am.Status {
		case "firing":
		case "resolved":
			if dedup == "" && labels["patient_id"] != "" {
				dedup = labels["patient_id"] + ":" + strings.ToUpper(alertType)
			}
			if dedup == "" {
				abortInvalid(c, invalid(prefix+"fingerprint", "a resolved alert needs a fingerprint or dedup_key label"))
				return
			}
			items = append(items, item{firing: false, key: dedup})
			continue
		default:
			abortInvalid(c, invalid(prefix+"status", "must be firing or resolved"))
			return
		}
		value := labels["value"]
		if value == "" {
			value = am.Annotations["value"]
		}
		req := alertRequest{
			AlertType: alertType, PatientID: labels["patient_id"], Room: labels["room"],
			Value: jsonScalar{set: true, text: value}, Source: "alertmanager:" + p.Receiver,
			ObservedAt: am.StartsAt, DedupKey: dedup,
		}
		a, fe, err := s.validateAlert(ctx, &req, prefix+"labels.", now)
		if err != nil {
			s.abortInternal(c, "validate alert", err)
			return
		}
		if fe != nil {
			if fe.Field == prefix+"labels.observed_at" {
				fe.Field = prefix + "startsAt"
			}
			abortInvalid(c, fe)
			return
		}
		items = append(items, item{firing: true, alert: a})
	}

	src := alertSourceOf(c)
	res := BatchResult{Received: len(items)}
	for _, it := range items {
		if !it.firing {
			if src.Staff != nil {
				s.refuseStaffSourceAction(c, src, "alertmanager resolved", it.key)
				res.Ignored++
				continue
			}
			ok, err := s.sourceResolved(ctx, src, it.key)
			if err != nil {
				s.abortTemporal(c, "resolve from alertmanager", err)
				return
			}
			if ok {
				res.Resolved++
			} else {
				s.auditForeignSourceAction(c, src, "alertmanager resolved", it.key, "")
				res.Ignored++
			}
			continue
		}
		it.alert.Integration = src.Integration
		out, err := s.ingest(ctx, it.alert)
		if err != nil {
			s.abortTemporal(c, "ingest alertmanager alert", err)
			return
		}
		if out.Result == "created" {
			res.Created++
		} else {
			res.Merged++
		}
	}
	c.JSON(http.StatusOK, res)
}

// pagerDutyEvent is a PagerDuty Events API v2 event.
type pagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *pagerDutyPayload `json:"payload"`
	Client      string            `json:"client"`
	ClientURL   string            `json:"client_url"`
	Images      []map[string]any  `json:"images"`
	Links       []map[string]any  `json:"links"`
}

type pagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component"`
	Group         string         `json:"group"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

// PagerDutyResponse mirrors the Events API v2 answer.
type PagerDutyResponse struct {
	Status   string `json:"status"`
	Message  string `json:"message"`
	DedupKey string `json:"dedup_key"`
}

// postPagerDuty accepts PagerDuty Events API v2 events. The API key may come
// as a bearer token or, as PagerDuty senders do, in routing_key. trigger
// opens or merges (custom_details carry alert_type, patient_id, room, value);
// acknowledge acknowledges as the source; resolve resolves after the
// stable-OK wait. Like PagerDuty, dedup keys are scoped to the routing key:
// acknowledge and resolve reach only incidents this API key fed, and events
// for no open incident are accepted and ignored. An event aimed at another
// integration's incident, or an acknowledge or resolve sent with a staff
// token (staff act through /v1/incidents), is answered the same way, has no
// effect, and is audited.
func (s *Server) postPagerDuty(c *gin.Context) {
	var ev pagerDutyEvent
	if !decodeJSON(c, &ev, false) {
		return
	}
	ctx := c.Request.Context()
	src := alertSourceOf(c)
	if src == nil {
		if ev.RoutingKey == "" {
			s.abortUnauthorized(c, "an API key is required (Authorization header or routing_key)")
			return
		}
		var err error
		if src, err = s.sourceFor(ctx, ev.RoutingKey); err != nil {
			s.abortInternal(c, "authenticate alert source", err)
			return
		}
		if src == nil {
			s.abortUnauthorized(c, "the routing_key is not a valid API key")
			return
		}
		setAlertSource(c, src)
	}
	switch ev.EventAction {
	case "trigger":
		s.pagerDutyTrigger(c, &ev)
	case "acknowledge", "resolve":
		if strings.TrimSpace(ev.DedupKey) == "" {
			abortInvalid(c, invalid("dedup_key", "is required to "+ev.EventAction))
			return
		}
		action := "pagerduty " + ev.EventAction
		switch {
		case src.Staff != nil:
			s.refuseStaffSourceAction(c, src, action, ev.DedupKey)
		case ev.EventAction == "resolve":
			ok, err := s.sourceResolved(ctx, src, ev.DedupKey)
			if err != nil {
				s.abortTemporal(c, action, err)
				return
			}
			if !ok {
				s.auditForeignSourceAction(c, src, action, ev.DedupKey, "")
			}
		default:
			outcome, reason, err := s.sourceAcknowledged(ctx, src, ev.DedupKey)
			if err != nil {
				s.abortTemporal(c, action, err)
				return
			}
			if outcome != sourceApplied {
				s.auditForeignSourceAction(c, src, action, ev.DedupKey, reason)
			}
		}
		// The same answer whatever happened: PagerDuty's for any accepted
		// event, so a caller learns nothing about other integrations' keys.
		c.JSON(http.StatusAccepted, PagerDutyResponse{Status: "success", Message: "Event processed", DedupKey: ev.DedupKey})
	case "":
		abortInvalid(c, invalid("event_action", "is required: trigger, acknowledge or resolve"))
	default:
		abortInvalid(c, invalid("event_action", "must be trigger, acknowledge or resolve"))
	}
}

func (s *Server) pagerDutyTrigger(c *gin.Context, ev *pagerDutyEvent) {
	if ev.Payload == nil {
		abortInvalid(c, invalid("payload", "is required for trigger"))
		return
	}
	p := ev.Payload
	details := func(k string) string {
		if v, ok := p.CustomDetails[k]; ok && v != nil {
			return strings.TrimSpace(fmt.Sprint(v))
		}
		return ""
	}
	alertType := details("alert_type")
	if alertType == "" {
		alertType = p.Class
	}
	room := details("room")
	if room == "" {
		room = p.Component
	}
	observed := p.Timestamp
	if observed == "" {
		observed = time.Now().UTC().Format(time.RFC3339Nano)
	}
	value := details("value")
	if value == "" {
		value = p.Summary
	}
	req := alertRequest{
		AlertType: alertType, PatientID: details("patient_id"), Room: room,
		Value: jsonScalar{set: true, text: value}, Source: p.Source, ObservedAt: observed, DedupKey: ev.DedupKey,
	}
	a, fe, err := s.validateAlert(c.Request.Context(), &req, "payload.custom_details.", time.Now().UTC())
	if err != nil {
		s.abortInternal(c, "validate alert", err)
		return
	}
	if fe != nil {
		switch fe.Field {
		case "payload.custom_details.source":
			fe.Field = "payload.source"
		case "payload.custom_details.observed_at":
			fe.Field = "payload.timestamp"
		case "payload.custom_details.dedup_key":
			fe.Field = "dedup_key"
		}
		abortInvalid(c, fe)
		return
	}
	a.Integration = alertSourceOf(c).Integration
	if _, err := s.ingest(c.Request.Context(), a); err != nil {
		s.abortTemporal(c, "pagerduty trigger", err)
		return
	}
	c.JSON(http.StatusAccepted, PagerDutyResponse{Status: "success", Message: "Event processed", DedupKey: a.DedupKey})
}

// sourceOutcome is what became of a source's acknowledge.
type sourceOutcome int

const (
	// sourceApplied: the source's own incident took it (or was already
	// acknowledged, or is resolving: PagerDuty semantics).
	sourceApplied sourceOutcome = iota
	// sourceNoIncident: the source has no open incident for the key.
	sourceNoIncident
	// sourceRefused: the incident refused the source (its validator).
	sourceRefused
)

// sourceAcknowledged acknowledges the open incident of src's dedup key on
// behalf of src. No open incident, or one already acknowledged, is not an
// error (PagerDuty semantics); a refusal by the incident returns its reason.
func (s *Server) sourceAcknowledged(ctx context.Context, src *alertSource, dedupKey string) (sourceOutcome, string, error) {
	h, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.IncidentWorkflowID(workflows.ScopedDedupKeyHash(src.Integration, dedupKey)),
		UpdateName: workflows.IncidentUpdateAcknowledge,
		Args: []any{&workflows.TransitionRequest{
			Actor: workflows.Actor{Access: workflows.AccessSource, Source: src.Name, Integration: src.Integration},
		}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return sourceApplied, "", nil
	case errors.As(err, &notFound):
		return sourceNoIncident, "", nil
	case errors.As(err, &appErr) && appErr.Type() == workflows.RejectIllegal:
		return sourceApplied, "", nil
	case errors.As(err, &appErr) && appErr.Type() == workflows.RejectClosed:
		return sourceNoIncident, "", nil
	case errors.As(err, &appErr) && appErr.Type() == workflows.RejectForbidden:
		return sourceRefused, appErr.Message(), nil
	default:
		return sourceNoIncident, "", err
	}
}

// refuseStaffSourceAction audits an acknowledge or resolve sent as a source
// with a staff token, which has no effect: staff act on incidents through
// the staff routes, with their own rights. The subject is the open incident
// the key names, if any.
func (s *Server) refuseStaffSourceAction(c *gin.Context, src *alertSource, action, dedupKey string) {
	subjectType, subjectID := "dedup_key", workflows.DedupKeyHash(dedupKey)
	var id string
	err := s.db.GetContext(c.Request.Context(), &id, `
		SELECT id FROM incidents WHERE unscoped_key_hash = $1 AND status <> 'RESOLVED'
		ORDER BY opened_at LIMIT 1`, subjectID)
	switch {
	case err == nil:
		subjectType, subjectID = "incident", id
	case !errors.Is(err, sql.ErrNoRows):
		s.logger.ErrorContext(c.Request.Context(), "look up incident of a refused source action", "err", err, "request_id", requestID(c))
	}
	s.auditEvent(c, auditSourceActionRefused, subjectType, subjectID,
		action+" by "+src.who()+": staff act on incidents through /v1/incidents/{id}, not as a source")
}

// auditForeignSourceAction audits a source action that found no open
// incident of its own when the key names another integration's open
// incident (a guessed or leaked key). A key that names no open incident at
// all is PagerDuty's "accepted and ignored" and is not audited. reason, when
// set, is the incident's own refusal.
func (s *Server) auditForeignSourceAction(c *gin.Context, src *alertSource, action, dedupKey, reason string) {
	var id string
	err := s.db.GetContext(c.Request.Context(), &id, `
		SELECT id FROM incidents WHERE unscoped_key_hash = $1 AND status <> 'RESOLVED' AND integration <> $2
		ORDER BY opened_at LIMIT 1`, workflows.DedupKeyHash(dedupKey), src.Integration)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if reason == "" {
			return
		}
		s.auditEvent(c, auditSourceActionRefused, "dedup_key", workflows.DedupKeyHash(dedupKey), action+" by "+src.who()+": "+reason)
		return
	case err != nil:
		s.logger.ErrorContext(c.Request.Context(), "look up incident of a refused source action", "err", err, "request_id", requestID(c))
		return
	}
	if reason == "" {
		reason = "the incident belongs to another integration"
	}
	s.auditEvent(c, auditSourceActionRefused, "incident", id, action+" by "+src.who()+": "+reason)
}
