//go:build integration

package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
	"github.com/vigil-health/vigil/worker"
)

// TestIncidents_SlackAndSMSFollowTheIncident runs the whole path with both
// channels on, against local servers speaking Slack's and Twilio's APIs: one
// Slack message per incident, edited in place as it changes, and every page
// also sent by SMS to the person's number.
func TestIncidents_SlackAndSMSFollowTheIncident(t *testing.T) {
	slackSrv := slackfake.New(t)
	smsSrv := smsfake.New(t, "AC-test", "sms-token")
	const channel = "C0VIGIL01"
	s := startStackWith(t, worker.Dependencies{
		Slack:        slacknotify.New(slacknotify.Config{Token: slackSrv.Token, APIURL: slackSrv.APIURL(), DefaultChannel: channel}),
		SlackChannel: channel,
		SMS:          &sms.Client{BaseURL: smsSrv.URL, AccountSID: "AC-test", AuthToken: "sms-token", From: "+447700900999"},
	})
	key := s.apiKey(t, "channels")
	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("VENTILATOR_ALARM", "P-CH-"+uuid.NewString()[:6]), &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.AssignedTo != nil })

	var phone, login string
	require.NoError(t, env.DB.QueryRow(`SELECT phone, login FROM staff WHERE id = $1`, *row.AssignedTo).Scan(&phone, &login))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		found := false
		for _, m := range smsSrv.Messages() {
			found = found || m.To == phone
		}
		assert.True(c, found, "the assignee got the page by SMS")
		assert.Len(c, slackSrv.Messages(channel), 1, "one Slack message for the incident")
	}, 10*time.Second, 50*time.Millisecond)

	token := s.login(t, login)
	path := "/v1/incidents/" + created.IncidentID
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/acknowledge", token, "", nil).StatusCode)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resolve", token, `{"resolution_notes":"Circuit reconnected, patient stable."}`, nil).StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		msgs := slackSrv.Messages(channel)
		if assert.Len(c, msgs, 1, "still one message: edited in place, never reposted") {
			assert.GreaterOrEqual(c, msgs[0].Updates, 2)
			assert.True(c, strings.HasSuffix(msgs[0].Text, ": Resolved"), "the message shows the resolution: %s", msgs[0].Text)
			assert.Contains(c, string(msgs[0].Attachments), slacknotify.ColorResolved)
		}
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, slackSrv.Calls("chat.postMessage"))
}
