package api

import (
	"context"
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
// wait.
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

	res := BatchResult{Received: len(items)}
	for _, it := range items {
		if !it.firing {
			ok, err := s.sourceResolved(ctx, it.key)
			if err != nil {
				s.abortTemporal(c, "resolve from alertmanager", err)
				return
			}
			if ok {
				res.Resolved++
			} else {
				res.Ignored++
			}
			continue
		}
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
// stable-OK wait. Like PagerDuty, events for no open incident are accepted
// and ignored.
func (s *Server) postPagerDuty(c *gin.Context) {
	var ev pagerDutyEvent
	if !decodeJSON(c, &ev, false) {
		return
	}
	ctx := c.Request.Context()
	source := c.GetString(sourceKey)
	if source == "" {
		if ev.RoutingKey == "" {
			s.abortUnauthorized(c, "an API key is required (Authorization header or routing_key)")
			return
		}
		name, err := s.sourceFor(ctx, ev.RoutingKey)
		if err != nil {
			s.abortInternal(c, "authenticate alert source", err)
			return
		}
		if name == "" {
			s.abortUnauthorized(c, "the routing_key is not a valid API key")
			return
		}
		source = name
	}
	switch ev.EventAction {
	case "trigger":
		s.pagerDutyTrigger(c, &ev)
	case "acknowledge", "resolve":
		if strings.TrimSpace(ev.DedupKey) == "" {
			abortInvalid(c, invalid("dedup_key", "is required to "+ev.EventAction))
			return
		}
		var err error
		if ev.EventAction == "resolve" {
			_, err = s.sourceResolved(ctx, ev.DedupKey)
		} else {
			err = s.sourceAcknowledged(ctx, ev.DedupKey, source)
		}
		if err != nil {
			s.abortTemporal(c, "pagerduty "+ev.EventAction, err)
			return
		}
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
	if _, err := s.ingest(c.Request.Context(), a); err != nil {
		s.abortTemporal(c, "pagerduty trigger", err)
		return
	}
	c.JSON(http.StatusAccepted, PagerDutyResponse{Status: "success", Message: "Event processed", DedupKey: a.DedupKey})
}

// sourceAcknowledged acknowledges the open incident of a dedup key on behalf
// of an alert source. No open incident, or one already acknowledged, is not
// an error (PagerDuty semantics).
func (s *Server) sourceAcknowledged(ctx context.Context, dedupKey, source string) error {
	h, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.IncidentWorkflowID(workflows.DedupKeyHash(dedupKey)),
		UpdateName: workflows.IncidentUpdateAcknowledge,
		Args: []any{&workflows.TransitionRequest{
			Actor: workflows.Actor{Access: workflows.AccessSource, Source: source},
		}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &notFound):
		return nil
	case errors.As(err, &appErr) && (appErr.Type() == workflows.RejectIllegal || appErr.Type() == workflows.RejectClosed):
		return nil
	default:
		return err
	}
}
