//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

// pagerDutyClient is PagerDuty's own Go client pointed at Vigil the way an
// operator configures it: the events endpoint is Vigil's PagerDuty route,
// to which the client appends /v2/enqueue.
func pagerDutyClient(s *stack) *pagerduty.Client {
	return pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(s.URL+"/v1/alerts/pagerduty"))
}

func pagerDutyEvent(key, action, dedup, patient, timestamp string) *pagerduty.V2Event {
	ev := &pagerduty.V2Event{RoutingKey: key, Action: action, DedupKey: dedup}
	if action == "trigger" {
		ev.Payload = &pagerduty.V2Payload{
			Summary: "Ventilator alarm", Source: "vent-7", Severity: "critical", Timestamp: timestamp, Component: "ICU-7",
			Details: map[string]any{"alert_type": "VENTILATOR_ALARM", "patient_id": patient, "value": "high pressure"},
		}
	}
	return ev
}

// TestReliability_PagerDuty_OfficialClientLifecycle drives trigger,
// acknowledge and resolve through go-pagerduty's Client against the real
// stack, with the timestamp format of PagerDuty's documentation. Before the
// fix the client's /v2/enqueue got 404 and the timestamp 400.
func TestReliability_PagerDuty_OfficialClientLifecycle(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "pd-client")
	pd := pagerDutyClient(s)
	ctx := context.Background()
	patient := "P-PDC-" + uuid.NewString()[:8]
	dedup := "pdc-" + uuid.NewString()
	// PagerDuty's documented form: fractional seconds and a +0000 offset.
	ts := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000-0700")
	require.True(t, strings.HasSuffix(ts, "+0000"), ts)

	res, err := pd.ManageEventWithContext(ctx, pagerDutyEvent(key, "trigger", dedup, patient, ts))
	require.NoError(t, err)
	require.Equal(t, "success", res.Status)
	require.Equal(t, "Event processed", res.Message)
	require.Equal(t, dedup, res.DedupKey)
	var id string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&id, `SELECT id FROM incidents WHERE patient_id = $1 AND status <> 'RESOLVED'`, patient))
	}, 10*time.Second, 50*time.Millisecond)

	res, err = pd.ManageEventWithContext(ctx, pagerDutyEvent(key, "acknowledge", dedup, patient, ""))
	require.NoError(t, err)
	require.Equal(t, dedup, res.DedupKey)
	waitIncident(t, id, func(r incidentRow) bool { return r.Status == "ACKNOWLEDGED" })
	res, err = pd.ManageEventWithContext(ctx, pagerDutyEvent(key, "resolve", dedup, patient, ""))
	require.NoError(t, err)
	require.Equal(t, "success", res.Status)
	waitIncident(t, id, func(r incidentRow) bool { return r.Status == "RESOLVED" })
}

// TestReliability_PagerDuty_TimestampFormats: every ISO 8601 form PagerDuty
// accepts is accepted; a timestamp that is not one is refused naming
// payload.timestamp.
func TestReliability_PagerDuty_TimestampFormats(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "pd-times")
	pd := pagerDutyClient(s)
	at := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second)
	for _, tc := range []struct{ name, ts string }{
		{"docs +0000 with millis", at.Format("2006-01-02T15:04:05.000-0700")},
		{"+0000 without fraction", at.Format("2006-01-02T15:04:05-0700")},
		{"Z with millis", at.Format("2006-01-02T15:04:05.000Z07:00")},
		{"RFC 3339", at.Format(time.RFC3339)},
		{"RFC 3339 offset", at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)},
		{"+hh offset", at.In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05.000Z07")},
		{"empty (now)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pd.ManageEventWithContext(context.Background(),
				pagerDutyEvent(key, "trigger", "pdt-"+uuid.NewString(), "P-PDT-"+uuid.NewString()[:8], tc.ts))
			require.NoError(t, err, tc.ts)
		})
	}
	_, err := pd.ManageEventWithContext(context.Background(),
		pagerDutyEvent(key, "trigger", "pdt-"+uuid.NewString(), "P-PDT-BAD", "06/12/2026 02:07"))
	var apiErr pagerduty.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.True(t, apiErr.APIError.Valid, err.Error())
	require.Contains(t, apiErr.APIError.ErrorObject.Errors[0], "payload.timestamp")
}

// TestReliability_PagerDuty_ErrorsDecodeInPagerDutyShape: Vigil's refusals
// on the Events v2 route decode in go-pagerduty (the Client's APIError and
// the Events API's EventsAPIV2Error), name the field, and keep the status
// code and X-Request-ID. Before the fix every error decoded as "JSON error
// object decode failed".
func TestReliability_PagerDuty_ErrorsDecodeInPagerDutyShape(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "pd-errors")
	pd := pagerDutyClient(s)
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		event  *pagerduty.V2Event
		status int
		field  string
	}{
		{"bad action", pagerDutyEvent(key, "explode", "d", "P1", ""), http.StatusBadRequest, "event_action"},
		{"missing patient", func() *pagerduty.V2Event {
			ev := pagerDutyEvent(key, "trigger", "d-"+uuid.NewString(), "P1", "")
			ev.Payload.Details = map[string]any{"alert_type": "VENTILATOR_ALARM"}
			return ev
		}(), http.StatusBadRequest, "payload.custom_details.patient_id"},
		{"ack without dedup key", pagerDutyEvent(key, "acknowledge", "", "P1", ""), http.StatusBadRequest, "dedup_key"},
		{"wrong routing key", pagerDutyEvent("vk_wrong", "trigger", "d", "P1", ""), http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pd.ManageEventWithContext(ctx, tc.event)
			var apiErr pagerduty.APIError
			require.ErrorAs(t, err, &apiErr)
			require.NotContains(t, err.Error(), "decode failed")
			require.Equal(t, tc.status, apiErr.StatusCode)
			require.True(t, apiErr.APIError.Valid, err.Error())
			require.Len(t, apiErr.APIError.ErrorObject.Errors, 1)
			require.Contains(t, apiErr.APIError.ErrorObject.Errors[0], tc.field)
			if tc.status == http.StatusBadRequest {
				require.Equal(t, 2001, apiErr.APIError.ErrorObject.Code)
			}
		})
	}

	// The raw answer: PagerDuty's Events API shape (what go-pagerduty's
	// package-level ManageEventWithContext decodes), with X-Request-ID.
	body, err := json.Marshal(pagerDutyEvent(key, "trigger", "d-"+uuid.NewString(), "P1", "yesterday"))
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/alerts/pagerduty/v2/enqueue", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(raw))
	require.NotEmpty(t, resp.Header.Get("X-Request-ID"))
	var shaped api.PagerDutyErrorResponse
	require.NoError(t, json.Unmarshal(raw, &shaped), string(raw))
	require.Equal(t, "invalid event", shaped.Status)
	require.Equal(t, "Event object is invalid", shaped.Message)
	require.Equal(t, resp.Header.Get("X-Request-ID"), shaped.RequestID)
	var eventsErr pagerduty.EventsAPIV2Error
	require.NoError(t, json.Unmarshal(raw, &eventsErr))
	eventsErr.StatusCode = resp.StatusCode
	require.True(t, eventsErr.BadRequest())
	require.Equal(t, "invalid event", eventsErr.APIError.ErrorObject.Status)
	require.Contains(t, eventsErr.Error(), "payload.timestamp")

	// The route Vigil's own callers use keeps Vigil's error shape.
	var e api.ErrorBody
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", "/v1/alerts/pagerduty", "", string(body), &e).StatusCode)
	require.Equal(t, "payload.timestamp", e.Error.Field)
}
