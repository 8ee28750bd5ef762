package activities_test

import (
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// TestSlackChangeMessage pins the seed's Slack wording and colours of a
// capacity change: each status with its emoji, the robot's reset and a
// service that left the search.
func TestSlackChangeMessage(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	at := time.Date(2026, 7, 15, 9, 5, 0, 0, time.UTC)
	base := watch.Change{
		Kind: watch.ChangeStatus, ServiceID: "2000001", Name: "Leeds UTC", Type: "UTC",
		Region: "Yorkshire", Previous: directory.CapacityHigh, ChangedBy: "j.smith", ChangedAt: at,
	}
	tests := []struct {
		name     string
		change   func(c *watch.Change)
		text     string
		color    string
		previous string
	}{
		{
			name:   "to HIGH",
			change: func(c *watch.Change) { c.Previous, c.Capacity = directory.CapacityLow, directory.CapacityHigh },
			text:   "Leeds UTC was changed by a user to :green_heart: HIGH", color: "good", previous: "LOW",
		},
		{
			name:   "to LOW",
			change: func(c *watch.Change) { c.Capacity = directory.CapacityLow },
			text:   "Leeds UTC was changed by a user to :large_orange_diamond: LOW", color: "warning", previous: "HIGH",
		},
		{
			name:   "to NONE",
			change: func(c *watch.Change) { c.Capacity = directory.CapacityNone },
			text:   "Leeds UTC was changed by a user to :red_circle: NONE", color: "danger", previous: "HIGH",
		},
		{
			name: "reset by the robot",
			change: func(c *watch.Change) {
				c.Kind, c.Capacity, c.ChangedBy = watch.ChangeRobotReset, "", directory.RobotUser
			},
			text: "Leeds UTC status was reset by the :robot_face:", color: "", previous: "HIGH",
		},
		{
			name: "no longer in the search",
			change: func(c *watch.Change) {
				c.Kind, c.Capacity, c.Previous = watch.ChangeDisappeared, directory.CapacityNone, ""
			},
			text: "Leeds UTC is no longer returned by the directory search: reported as :red_circle: NONE", color: "danger", previous: "(reset)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			text, att := activities.SlackChangeMessage(c, london)
			require.Equal(t, tt.text, text)
			require.Equal(t, tt.color, att.Color)
			require.Equal(t, text, att.Pretext)
			require.Equal(t, text, att.Fallback)
			require.Equal(t, []slack.AttachmentField{
				{Title: "Previously", Value: tt.previous, Short: true},
				{Title: "Region", Value: "Yorkshire", Short: true},
				{Title: "Changed At", Value: "15/07/2026 10:05", Short: true},
				{Title: "Type Of Service", Value: "UTC", Short: true},
			}, att.Fields)
		})
	}
}

// TestSlackSummaryMessage pins the periodic summary: the time on the
// hospital's clock, and each service with its status emoji (none for a
// status Vigil does not know).
func TestSlackSummaryMessage(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	at := time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name     string
		services []watch.LowCapacityService
		text     string
		fields   []slack.AttachmentField
	}{
		{
			name: "none below HIGH",
			text: "At 09:30, there are no services indicating low capacity.",
		},
		{
			name: "services below HIGH",
			services: []watch.LowCapacityService{
				{ServiceID: "1", Name: "Dewsbury UTC", Capacity: directory.CapacityNone},
				{ServiceID: "2", Name: "Armley Hub", Capacity: directory.CapacityLow},
				{ServiceID: "3", Capacity: "CLOSED"},
			},
			text: "At 09:30, these services are indicating low capacity (a status of NONE means they are not returning in DoS searches).",
			fields: []slack.AttachmentField{
				{Title: "Dewsbury UTC", Value: ":red_circle: NONE", Short: true},
				{Title: "Armley Hub", Value: ":large_orange_diamond: LOW", Short: true},
				{Title: "3", Value: "CLOSED", Short: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, att := activities.SlackSummaryMessage(tt.services, at, london)
			require.Equal(t, tt.text, text)
			require.Equal(t, "Capacity Status Summary", att.Fallback)
			require.Equal(t, tt.fields, att.Fields)
		})
	}
}
