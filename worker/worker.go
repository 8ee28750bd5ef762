// Package worker builds Vigil's Temporal worker and registers every workflow
// and activity on it.
package worker

import (
	"fmt"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/oncall"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/workflows"
)

// Dependencies are what the activities need to reach the world.
type Dependencies struct {
	DB *sqlx.DB
	// HospitalTZ is the zone of on-call shifts; nil means UTC.
	HospitalTZ *time.Location
	// Metrics is the process's registry; nil exports nothing.
	Metrics *metrics.Registry
	// Slack and SMS are the optional notification channels; nil disables.
	Slack        *slacknotify.Client
	SlackChannel string
	SMS          *sms.Client
}

// New returns a worker for taskQueue with everything registered. The caller
// starts and stops it.
func New(c client.Client, taskQueue string, deps Dependencies) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		// Let in-flight activities finish their current attempt on shutdown.
		WorkerStopTimeout: 10 * time.Second,
	})
	RegisterWorkflows(w)
	RegisterActivities(w, deps)
	return w
}

// RegisterWorkflows registers every workflow; replay tests use it too.
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflow(workflows.SystemCheck)
	r.RegisterWorkflow(workflows.Incident)
}

// RegisterActivities registers every activity struct.
func RegisterActivities(r sdkworker.ActivityRegistry, deps Dependencies) {
	r.RegisterActivity(&activities.Database{DB: deps.DB, Identity: identity()})
	loc := deps.HospitalTZ
	if loc == nil {
		loc = time.UTC
	}
	inc := &activities.Incidents{DB: deps.DB, Schedule: &oncall.Schedule{DB: deps.DB, Location: loc}}
	if deps.Metrics != nil {
		inc.Metrics = deps.Metrics.Incidents()
	}
	r.RegisterActivity(inc)
	notifier := &activities.Notifier{DB: deps.DB, Slack: deps.Slack, SlackChannel: deps.SlackChannel, SMS: deps.SMS}
	if deps.Metrics != nil {
		notifier.Metrics = deps.Metrics.Incidents()
	}
	r.RegisterActivity(notifier)
}

// identity is the SDK's default worker identity, pid@host.
func identity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}
