package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/metrics"
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

// BatchResult counts what a webhook batch did. Created, Merged, Duplicates
// and Accepted count the valid alerts; an alert Vigil could not parse counts
// in Unparseable and is listed in Refused. When the outcome of some alerts
// was not known in time, they are listed in Unconfirmed, Error is set and
// the answer is 504 with Retry-After: Alertmanager resends the batch, and
// alerts keyed by fingerprint and startsAt are counted once.
type BatchResult struct {
	Received int `json:"received"`
	Created  int `json:"created"`
	Merged   int `json:"merged"`
	// Duplicates counts alerts the incident had already counted (the same
	// fingerprint and startsAt, e.g. a resend): nothing changed.
	Duplicates int `json:"duplicates"`
	// Accepted counts alerts the incident workflow took durably whose
	// outcome (created or merged) was not known in time.
	Accepted int `json:"accepted"`
	Resolved int `json:"resolved"`
	// Ignored counts resolve events for which no incident was open.
	Ignored int `json:"ignored"`
	// Unparseable counts the alerts Vigil could not parse; each firing one
	// opened (or merged into) an UNPARSEABLE_ALERT incident that pages the
	// failsafe role.
	Unparseable int            `json:"unparseable"`
	Refused     []RefusedAlert `json:"refused,omitempty"`
	// Unconfirmed lists the alerts whose outcome is not known: the wait
	// ran out before their incident workflow accepted them.
	Unconfirmed []UnconfirmedAlert `json:"unconfirmed,omitempty"`
	// Error is set, with the code maybe_applied, when Unconfirmed is not
	// empty.
	Error *MaybeAppliedDetail `json:"error,omitempty"`
}

// UnconfirmedAlert is an alert of a batch whose outcome is not known.
type UnconfirmedAlert struct {
	// Index is the alert's position in the batch's alerts.
	Index int `json:"index"`
	// Result is "maybe_applied" (sent, not confirmed in time) or
	// "not_sent" (the wait ran out before it was sent; not applied).
	Result string `json:"result"`
}

// Results of an UnconfirmedAlert.
const (
	unconfirmedMaybeApplied = "maybe_applied"
	unconfirmedNotSent      = "not_sent"
)

// RefusedAlert is one alert of a batch that Vigil could not parse.
type RefusedAlert struct {
	// Index is the alert's position in the batch's alerts.
	Index int `json:"index"`
	// Field names what was wrong, e.g. alerts[2].labels.patient_id.
	Field   string `json:"field"`
	Message string `json:"message"`
	// IncidentID is the failsafe incident the alert opened or merged into;
	// empty for a resolved alert, which has nothing to page about.
	IncidentID string `json:"incident_id,omitempty"`
}

// unparseableAlertType is the catalogue alert type (migration 00013) of an
// alert Vigil could not parse: HIGH, paging the failsafe role.
const unparseableAlertType = "UNPARSEABLE_ALERT"

// unparseablePatient stands in for the patient of an unparseable alert: a
// placeholder, never personal data.
const unparseablePatient = "UNKNOWN"

// postAlertmanager accepts Alertmanager's webhook. Labels map to the alert:
// alert_type (or alertname), patient_id, room, value, dedup_key (default: the
// fingerprint, which Alertmanager keeps stable from firing to resolved).
// Every alert is checked before any is processed. One Vigil cannot parse
// (unknown alert type, no patient_id, a bad startsAt, ...) does not cost
// the batch its valid alerts (Alertmanager does not retry a 4xx): the valid
// ones are processed, and each unparseable firing alert opens an
// UNPARSEABLE_ALERT incident paging the failsafe role, its value the field
// at fault and the raw labels; the answer (200) lists them under refused,
// and vigil_alerts_refused_total counts them. Only a body that is not an
// Alertmanager payload is refused whole (400). Resolved alerts resolve
// their incident after the stable-OK wait; only the integration (API key)
// that fed an incident may resolve it, so a resolved alert for another's
// incident, or sent with a staff token, is ignored like one for no open
// incident, and audited. A firing alert's fingerprint and startsAt are its
// idempotency key: Alertmanager resends a batch after a 5xx (and repeats
// still-firing alerts), and an incident counts each firing once. The batch
// shares one alert wait; alerts whose outcome is not known by then are
// listed in unconfirmed, with 504 and Retry-After.
func (s *Server) postAlertmanager(c *gin.Context) {
	var p alertmanagerPayload
	if !decodeJSON(c, &p, false) {
		return
	}
	if len(p.Alerts) == 0 {
		abortInvalid(c, invalid("alerts", "must hold at least one alert"))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.AlertWait)
	defer cancel()
	now := time.Now().UTC()
	type item struct {
		index   int
		firing  bool
		alert   *alert
		key     string
		refused *RefusedAlert
	}
	items := make([]item, 0, len(p.Alerts))
	res := BatchResult{Received: len(p.Alerts)}
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
		var fe *fieldError
		switch am.Status {
		case "firing":
		case "resolved":
			if dedup == "" && labels["patient_id"] != "" {
				dedup = labels["patient_id"] + ":" + strings.ToUpper(alertType)
			}
			if dedup == "" {
				// Nothing to resolve and nothing to page about: reported only.
				fe = invalid(prefix+"fingerprint", "a resolved alert needs a fingerprint or dedup_key label")
				s.alertRefused("alertmanager", prefix, fe)
				res.Unparseable++
				res.Refused = append(res.Refused, RefusedAlert{Index: i, Field: fe.Field, Message: fe.Message})
				continue
			}
			items = append(items, item{index: i, firing: false, key: dedup})
			continue
		default:
			fe = invalid(prefix+"status", "must be firing or resolved")
		}
		var a *alert
		if fe == nil {
			value := labels["value"]
			if value == "" {
				value = am.Annotations["value"]
			}
			req := alertRequest{
				AlertType: alertType, PatientID: labels["patient_id"], Room: labels["room"],
				Value: jsonScalar{set: true, text: value}, Source: "alertmanager:" + p.Receiver,
				ObservedAt: am.StartsAt, DedupKey: dedup,
			}
			var err error
			a, fe, err = s.validateAlert(ctx, &req, prefix+"labels.", now)
			if err != nil {
				s.abortInternal(c, "validate alert", err)
				return
			}
			if fe != nil {
				switch fe.Field {
				case prefix + "labels.observed_at":
					fe.Field = prefix + "startsAt"
				case prefix + "labels.source":
					fe.Field = "receiver"
				}
			}
		}
		if fe != nil {
			fa, err := s.unparseableAlert(ctx, &p, &am, fe, now)
			if err != nil {
				s.abortInternal(c, "validate unparseable alert", err)
				return
			}
			s.alertRefused("alertmanager", prefix, fe)
			fa.IdempotencyKey = alertmanagerIdempotencyKey(&am)
			items = append(items, item{index: i, firing: true, alert: fa, refused: &RefusedAlert{Index: i, Field: fe.Field, Message: fe.Message}})
			continue
		}
		a.IdempotencyKey = alertmanagerIdempotencyKey(&am)
		items = append(items, item{index: i, firing: true, alert: a})
	}

	src := alertSourceOf(c)
	unconfirmed := func(it item, result string, err error) {
		s.Logger.WarnContext(c.Request.Context(), "alertmanager alert outcome unknown", "index", it.index, "result", result, "err", err, "request_id", requestID(c))
		res.Unconfirmed = append(res.Unconfirmed, UnconfirmedAlert{Index: it.index, Result: result})
		if it.refused != nil {
			res.Unparseable++
			res.Refused = append(res.Refused, *it.refused)
		}
	}
	for _, it := range items {
		if ctx.Err() != nil {
			unconfirmed(it, unconfirmedNotSent, ctx.Err())
			continue
		}
		if !it.firing {
			if src.Staff != nil {
				s.refuseStaffSourceAction(c, src, "alertmanager resolved", it.key)
				res.Ignored++
				continue
			}
			ok, err := s.sourceResolved(ctx, src, it.key)
			if err != nil && ctx.Err() != nil {
				unconfirmed(it, unconfirmedMaybeApplied, err)
				continue
			}
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
		if timedOut, notSent := alertTimedOut(err); timedOut {
			result := unconfirmedMaybeApplied
			if notSent {
				result = unconfirmedNotSent
			}
			unconfirmed(it, result, err)
			continue
		}
		if err != nil {
			s.abortTemporal(c, "ingest alertmanager alert", err)
			return
		}
		switch {
		case it.refused != nil:
			it.refused.IncidentID = out.IncidentID
			res.Unparseable++
			res.Refused = append(res.Refused, *it.refused)
		case out.Result == alertCreated:
			res.Created++
		case out.Result == alertDuplicate:
			res.Duplicates++
		case out.Result == alertAccepted:
			res.Accepted++
		default:
			res.Merged++
		}
	}
	sort.Slice(res.Refused, func(i, j int) bool { return res.Refused[i].Index < res.Refused[j].Index })
	if len(res.Unconfirmed) > 0 {
		e := maybeApplied(c, fmt.Sprintf("%d alerts of the batch were not confirmed in time and may have been applied; resend the batch: alerts with a fingerprint are counted once", len(res.Unconfirmed)), "")
		res.Error = &e
		c.Header("Retry-After", strconv.Itoa(retryAfterMaybeApplied))
		c.JSON(http.StatusGatewayTimeout, res)
		return
	}
	c.JSON(http.StatusOK, res)
}

// alertmanagerIdempotencyKey is a firing Alertmanager alert's idempotency
// key: its fingerprint and startsAt, the same in every notification of one
// firing; "" without a fingerprint.
func alertmanagerIdempotencyKey(am *alertmanagerAlert) string {
	if am.Fingerprint == "" {
		return ""
	}
	return "alertmanager\x00" + am.Fingerprint + "\x00" + am.StartsAt
}

// alertRefused logs an alert Vigil could not parse (the field, never the
// labels) and counts it in vigil_alerts_refused_total; the reason is the
// field without the alert's index, a bounded set.
func (s *Server) alertRefused(source, prefix string, fe *fieldError) {
	reason := strings.TrimPrefix(fe.Field, prefix)
	metrics.AlertsRefused(s.Metrics).WithLabelValues(source, reason).Inc()
	s.Logger.Warn("unparseable alert: paging the failsafe role", "source", source, "field", fe.Field, "reason", fe.Message)
}

// maxUnparseableValue bounds the value of an UNPARSEABLE_ALERT incident
// (validateAlert's limit on a value).
const maxUnparseableValue = 128

// unparseableAlert is the UNPARSEABLE_ALERT alert standing for an
// Alertmanager alert Vigil could not parse (fe says why). Its dedup key is
// the fingerprint (else a hash of the raw labels), so Alertmanager's
// repeats merge; its value names the field at fault and renders the raw
// labels, bounded; its room is the room label when usable.
func (s *Server) unparseableAlert(ctx context.Context, p *alertmanagerPayload, am *alertmanagerAlert, fe *fieldError, now time.Time) (*alert, error) {
	keys := make([]string, 0, len(am.Labels))
	for k := range am.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var raw strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&raw, "%s=%s\n", k, am.Labels[k])
	}
	dedup := am.Fingerprint
	if !validText(dedup, false) || dedup == "" || utf8.RuneCountInString(dedup) > 200 {
		sum := sha256.Sum256([]byte(raw.String()))
		dedup = "labels-" + hex.EncodeToString(sum[:12])
	}
	room := strings.TrimSpace(am.Labels["room"])
	if room == "" || !validText(room, false) || utf8.RuneCountInString(room) > 64 {
		room = "unknown"
	}
	field := fe.Field
	if i := strings.Index(field, "]."); i >= 0 {
		field = field[i+2:]
	}
	var v strings.Builder
	v.WriteString(field + " " + fe.Message + ";")
	for _, k := range keys {
		v.WriteString(" " + k + "=" + am.Labels[k])
	}
	source := "alertmanager:" + p.Receiver
	if !validText(source, false) || utf8.RuneCountInString(source) > 128 {
		source = "alertmanager"
	}
	req := alertRequest{
		AlertType: unparseableAlertType, PatientID: unparseablePatient, Room: room,
		Value: jsonScalar{set: true, text: boundedText(v.String(), maxUnparseableValue)}, Source: source,
		ObservedAt: now.Format(time.RFC3339Nano), DedupKey: "unparseable:" + dedup,
	}
	a, bad, err := s.validateAlert(ctx, &req, "", now)
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, fmt.Errorf("the %s alert is itself invalid (is migration 00013 applied?): %w", unparseableAlertType, bad)
	}
	return a, nil
}

// boundedText is s with control characters replaced and cut to at most n
// runes (an ellipsis marking the cut).
func boundedText(s string, n int) string {
	out := make([]rune, 0, n)
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = ' '
		}
		out = append(out, r)
		if len(out) > n {
			return string(out[:n-1]) + "…"
		}
	}
	return string(out)
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
	Summary   string `json:"summary"`
	Source    string `json:"source"`
	Severity  string `json:"severity"`
	Timestamp string `json:"timestamp"`
	Component string `json:"component"`
	Group     string `json:"group"`
	Class     string `json:"class"`
	// CustomDetails is any JSON value, as PagerDuty takes it; Vigil reads
	// alert_type, patient_id, room and value from it when it is an object.
	CustomDetails any `json:"custom_details"`
}

// PagerDutyResponse mirrors the Events API v2 answer.
type PagerDutyResponse struct {
	Status   string `json:"status"`
	Message  string `json:"message"`
	DedupKey string `json:"dedup_key"`
}

// PagerDutyErrorResponse is an error of the Events API v2 route
// (POST /v1/alerts/pagerduty/v2/enqueue) in PagerDuty's shape: status,
// message and errors, as the Events API answers (and go-pagerduty's
// package-level ManageEventWithContext decodes), plus the same in an
// "error" object with a numeric code, as PagerDuty's REST API answers (and
// go-pagerduty's Client.ManageEventWithContext decodes). Each entry of
// errors names the field first ("payload.timestamp: ...").
type PagerDutyErrorResponse struct {
	Status    string               `json:"status"`
	Message   string               `json:"message"`
	Errors    []string             `json:"errors"`
	Error     PagerDutyErrorObject `json:"error"`
	RequestID string               `json:"request_id,omitempty"`
}

// PagerDutyErrorObject is the "error" object of a PagerDutyErrorResponse.
type PagerDutyErrorObject struct {
	Code    int      `json:"code"`
	Message string   `json:"message"`
	Errors  []string `json:"errors"`
}

// pagerDutyTimeLayouts are the timestamp forms PagerDuty accepts: ISO 8601
// with a Z, +hh:mm, +hhmm or +hh offset, with or without fractional seconds
// (Go's parser takes a fraction after the seconds whatever the layout).
var pagerDutyTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
}

// parsePagerDutyTime parses a PagerDuty event timestamp.
func parsePagerDutyTime(v string) (time.Time, bool) {
	for _, layout := range pagerDutyTimeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// pagerDutyErrorShape answers the errors of the route it guards in
// PagerDuty's shape (PagerDutyErrorResponse) instead of Vigil's ErrorBody,
// so PagerDuty's own clients can decode them; status codes, Retry-After and
// X-Request-ID are kept. It must come before the route's other handlers.
func pagerDutyErrorShape() gin.HandlerFunc {
	return func(c *gin.Context) {
		w := &pagerDutyErrorWriter{ResponseWriter: c.Writer}
		c.Writer = w
		defer func() { c.Writer = w.ResponseWriter }()
		c.Next()
		if !w.held {
			return
		}
		var body ErrorBody
		_ = json.Unmarshal(w.body.Bytes(), &body) // our own error bodies; an empty detail still answers
		detail := body.Error.Message
		if body.Error.Field != "" {
			detail = body.Error.Field + ": " + detail
		}
		if detail == "" {
			detail = http.StatusText(w.status)
		}
		status, message := pagerDutyErrorStatus(w.status)
		out, err := json.Marshal(PagerDutyErrorResponse{
			Status: status, Message: message, Errors: []string{detail},
			Error:     PagerDutyErrorObject{Code: pagerDutyErrorCode(w.status), Message: message, Errors: []string{detail}},
			RequestID: body.Error.RequestID,
		})
		if err != nil {
			out = w.body.Bytes()
		}
		h := w.ResponseWriter.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Del("Content-Length")
		w.ResponseWriter.WriteHeader(w.status)
		_, _ = w.ResponseWriter.Write(out)
	}
}

// pagerDutyErrorStatus is the Events API's status and message for an HTTP
// error status.
func pagerDutyErrorStatus(code int) (string, string) {
	switch {
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusUnsupportedMediaType:
		return "invalid event", "Event object is invalid"
	case code == http.StatusUnauthorized:
		return "unauthorized", "Invalid routing key or API key"
	case code == http.StatusForbidden:
		return "forbidden", "Not allowed"
	case code == http.StatusTooManyRequests:
		return "throttled", "Requests are arriving too quickly; retry after the Retry-After delay"
	case code >= 500:
		return "error", "Vigil could not process the event; retry it"
	default:
		return "error", http.StatusText(code)
	}
}

// pagerDutyErrorCode is PagerDuty's REST API error code for an HTTP error
// status (2001: invalid input; 2006: not authorized; 2007: forbidden; 2020:
// throttled; 2000: internal error).
func pagerDutyErrorCode(status int) int {
	switch {
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnsupportedMediaType:
		return 2001
	case status == http.StatusUnauthorized:
		return 2006
	case status == http.StatusForbidden:
		return 2007
	case status == http.StatusTooManyRequests:
		return 2020
	default:
		return 2000
	}
}

// pagerDutyErrorWriter holds back an error answer (status >= 400) for
// pagerDutyErrorShape to rewrite; other answers pass through.
type pagerDutyErrorWriter struct {
	gin.ResponseWriter
	held   bool
	status int
	body   bytes.Buffer
}

func (w *pagerDutyErrorWriter) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.held, w.status = true, code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *pagerDutyErrorWriter) WriteHeaderNow() {
	if !w.held {
		w.ResponseWriter.WriteHeaderNow()
	}
}

func (w *pagerDutyErrorWriter) Write(b []byte) (int, error) {
	if w.held {
		return w.body.Write(b)
	}
	if s := w.ResponseWriter.Status(); s >= http.StatusBadRequest && !w.ResponseWriter.Written() {
		w.held, w.status = true, s
		return w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *pagerDutyErrorWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *pagerDutyErrorWriter) Status() int {
	if w.held {
		return w.status
	}
	return w.ResponseWriter.Status()
}

func (w *pagerDutyErrorWriter) Written() bool { return w.held || w.ResponseWriter.Written() }

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
		var ok bool
		if src, ok = s.authenticateSource(c, ev.RoutingKey, "the routing_key is not a valid API key"); !ok {
			return
		}
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

// pagerDutyTrigger opens or merges. An Idempotency-Key header makes a
// retried trigger count once; every outcome the workflow confirms, or
// durably accepts, within the alert wait is PagerDuty's 202, and one not
// confirmed in time is 504 maybe_applied.
func (s *Server) pagerDutyTrigger(c *gin.Context, ev *pagerDutyEvent) {
	if ev.Payload == nil {
		abortInvalid(c, invalid("payload", "is required for trigger"))
		return
	}
	idem, fe := headerIdempotencyKey(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.AlertWait)
	defer cancel()
	p := ev.Payload
	cd, _ := p.CustomDetails.(map[string]any)
	details := func(k string) string {
		if v, ok := cd[k]; ok && v != nil {
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
	observed := strings.TrimSpace(p.Timestamp)
	if observed == "" {
		observed = time.Now().UTC().Format(time.RFC3339Nano)
	} else if t, ok := parsePagerDutyTime(observed); ok {
		observed = t.Format(time.RFC3339Nano)
	} else {
		abortInvalid(c, invalid("payload.timestamp", "must be an ISO 8601 time, e.g. 2026-12-06T02:07:18.000+0000 or 2026-12-06T02:07:18Z"))
		return
	}
	value := details("value")
	if value == "" {
		value = p.Summary
	}
	req := alertRequest{
		AlertType: alertType, PatientID: details("patient_id"), Room: room,
		Value: jsonScalar{set: true, text: value}, Source: p.Source, ObservedAt: observed, DedupKey: ev.DedupKey,
	}
	a, fe, err := s.validateAlert(ctx, &req, "payload.custom_details.", time.Now().UTC())
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
	a.Integration, a.IdempotencyKey = alertSourceOf(c).Integration, idem
	if _, ok := s.ingestOne(ctx, c, a, "pagerduty trigger"); !ok {
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
	if s.TransitionKeys == nil {
		return sourceNoIncident, "", errNoTransitionKeys
	}
	h, err := s.Temporal.UpdateWorkflow(ctx, workflows.TransitionUpdate(s.TransitionKeys,
		workflows.IncidentWorkflowID(workflows.ScopedDedupKeyHash(src.Integration, dedupKey)),
		workflows.IncidentUpdateAcknowledge, "", &workflows.TransitionRequest{
			Actor: workflows.Actor{Access: workflows.AccessSource, Source: src.Name, Integration: src.Integration},
		}))
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return sourceApplied, "", nil
	case workflowGone(err):
		return sourceNoIncident, "", nil
	case rejectedAs(err, workflows.RejectIllegal):
		return sourceApplied, "", nil
	case rejectedAs(err, workflows.RejectClosed):
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
	id, found, err := s.incidentStore().OldestOpenByKeyHash(c.Request.Context(), subjectID)
	switch {
	case err != nil:
		s.Logger.ErrorContext(c.Request.Context(), "look up incident of a refused source action", "err", err, "request_id", requestID(c))
	case found:
		subjectType, subjectID = "incident", id
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
	id, found, err := s.incidentStore().OldestOpenOfOtherIntegration(c.Request.Context(), workflows.DedupKeyHash(dedupKey), src.Integration)
	switch {
	case err != nil:
		s.Logger.ErrorContext(c.Request.Context(), "look up incident of a refused source action", "err", err, "request_id", requestID(c))
		return
	case !found:
		if reason == "" {
			return
		}
		s.auditEvent(c, auditSourceActionRefused, "dedup_key", workflows.DedupKeyHash(dedupKey), action+" by "+src.who()+": "+reason)
		return
	}
	if reason == "" {
		reason = "the incident belongs to another integration"
	}
	s.auditEvent(c, auditSourceActionRefused, "incident", id, action+" by "+src.who()+": "+reason)
}
