// Package worker builds Vigil's Temporal workers and registers every
// workflow and activity on them: one worker on the main task queue, and one
// on the directory task queue whose activity rate is capped for all workers
// together (the directory's own limit).
package worker

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/operatorsignal"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/systemcheck"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/workflows"
)

// Dependencies are what the activities need to reach the world.
type Dependencies struct {
	DB *sqlx.DB
	// HospitalTZ is the zone of on-call shifts; nil means UTC.
	HospitalTZ *time.Location
	// Metrics is the process's registry; nil exports nothing.
	Metrics *metrics.Registry
	// TransitionKeys verify that Vigil's API authorised each staff
	// transition sent to an incident; nil refuses every transition.
	TransitionKeys *actionproof.Keyring
	// Slack and SMS are the optional notification channels; nil disables.
	Slack        *slacknotify.Client
	SlackChannel string
	SMS          *sms.Client
	// Directory is the service directory capacity watches poll; nil runs
	// no directory worker (polls then wait, and watches show degraded).
	Directory directory.Directory
	// DirectoryRate caps directory polls per second across every worker
	// (a Temporal task-queue rate limit); zero means 2.
	DirectoryRate float64
	// Broker is the data broker's admin API fleet scans read; nil makes a
	// scan fail (non-retryable) while node workflows keep recording and
	// mailing.
	Broker activities.BrokerSource
	// BrokerConcurrency bounds the nodes a scan fetches at once; zero
	// means activities.DefaultBrokerConcurrency.
	BrokerConcurrency int
	// Temporal and NodeTaskQueue are where fleet scans start node
	// workflows; New fills them with its client and task queue.
	Temporal      client.Client
	NodeTaskQueue string
	// Mailer sends node e-mails; nil records them as failed ("no SMTP
	// configured"). MailCC are copied (Cc) on every node e-mail.
	Mailer *mail.Sender
	MailCC []string
	// CurrentDWHVersion and CurrentI2B2Version are the current releases
	// nodes are compared with ("" disables DWH OUTDATED).
	CurrentDWHVersion  string
	CurrentI2B2Version string
	// NoEscalationDispatcher runs no escalation dispatcher in this process:
	// escalation steps are then paged by the workflows' timers only.
	NoEscalationDispatcher bool
}

// Workers are one process's Temporal workers.
type Workers struct {
	main      sdkworker.Worker
	directory sdkworker.Worker
	// dispatcher pages escalation steps as they fall due (nil: none).
	dispatcher     *activities.EscalationDispatcher
	stopDispatcher context.CancelFunc
	dispatcherDone chan struct{}
}

// New returns the workers for taskQueue with everything registered. The
// caller starts and stops them.
func New(c client.Client, taskQueue string, deps Dependencies) *Workers {
	// Let in-flight activities finish their current attempt on shutdown.
	const stopTimeout = 10 * time.Second
	w := &Workers{main: sdkworker.New(c, taskQueue, sdkworker.Options{
		WorkerStopTimeout: stopTimeout,
		Interceptors:      []interceptor.WorkerInterceptor{workflows.TransitionProofInterceptor(deps.TransitionKeys)},
	})}
	if deps.Temporal == nil {
		deps.Temporal = c
	}
	if deps.NodeTaskQueue == "" {
		deps.NodeTaskQueue = taskQueue
	}
	RegisterWorkflows(w.main)
	inc := RegisterActivities(w.main, deps)
	if !deps.NoEscalationDispatcher && deps.DB != nil {
		// Steps overdue by more than half the workflow's grace are left to
		// its delayed page, so the two never page the same step twice.
		w.dispatcher = &activities.EscalationDispatcher{Incidents: inc, MaxLate: workflows.LateTimerGrace / 2}
	}
	if deps.Directory != nil {
		rate := deps.DirectoryRate
		if rate <= 0 {
			rate = 2
		}
		w.directory = sdkworker.New(c, workflows.DirectoryTaskQueue(taskQueue), sdkworker.Options{
			WorkerStopTimeout:            stopTimeout,
			TaskQueueActivitiesPerSecond: rate,
			DisableWorkflowWorker:        true,
		})
		w.directory.RegisterActivity(watchActivities(deps))
	}
	return w
}

// Start starts every worker.
func (w *Workers) Start() error {
	if err := w.main.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if w.directory != nil {
		if err := w.directory.Start(); err != nil {
			w.main.Stop()
			return fmt.Errorf("start directory worker: %w", err)
		}
	}
	if w.dispatcher != nil {
		ctx, cancel := context.WithCancel(context.Background())
		w.stopDispatcher, w.dispatcherDone = cancel, make(chan struct{})
		go func() {
			defer close(w.dispatcherDone)
			w.dispatcher.Run(ctx)
		}()
	}
	return nil
}

// Stop stops every worker.
func (w *Workers) Stop() {
	if w.stopDispatcher != nil {
		w.stopDispatcher()
		<-w.dispatcherDone
	}
	if w.directory != nil {
		w.directory.Stop()
	}
	w.main.Stop()
}

// RegisterWorkflows registers every workflow; replay tests use it too.
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflow(workflows.SystemCheck)
	r.RegisterWorkflow(workflows.Incident)
	r.RegisterWorkflow(workflows.Watch)
	r.RegisterWorkflow(workflows.SnapshotRetention)
	r.RegisterWorkflow(workflows.CapacitySummary)
	r.RegisterWorkflow(workflows.Activation)
	r.RegisterWorkflow(workflows.NodeMonitor)
	r.RegisterWorkflow(workflows.FleetScan)
}

// RegisterActivities registers every activity struct; it returns the
// incident activities, which the escalation dispatcher runs too.
func RegisterActivities(r sdkworker.ActivityRegistry, deps Dependencies) *activities.Incidents {
	r.RegisterActivity(&activities.Database{Store: &systemcheck.Store{DB: deps.DB}, Identity: identity()})
	loc := deps.HospitalTZ
	if loc == nil {
		loc = time.UTC
	}
	incidents := &incident.Store{DB: deps.DB}
	refs := &reference.Store{DB: deps.DB}
	inc := &activities.Incidents{Store: incidents, Reference: refs, Schedule: &oncall.Schedule{DB: deps.DB, Location: loc},
		SlackEnabled: deps.Slack != nil, SMSEnabled: deps.SMS != nil}
	if deps.Metrics != nil {
		inc.Metrics = deps.Metrics.Incidents()
	}
	r.RegisterActivity(inc)
	notifier := &activities.Notifier{Store: incidents, Reference: refs, Slack: deps.Slack, SlackChannel: deps.SlackChannel, SMS: deps.SMS}
	if deps.Metrics != nil {
		notifier.Metrics = deps.Metrics.Incidents()
	}
	r.RegisterActivity(notifier)
	watches := watchActivities(deps)
	r.RegisterActivity(watches)
	r.RegisterActivity(&activities.CapacityMaintenance{Store: watches.Store, Slack: deps.Slack, London: watches.London})
	r.RegisterActivity(&activities.Activations{Store: &activation.Store{DB: deps.DB}})
	r.RegisterActivity(nodeActivities(deps))
	r.RegisterActivity(&activities.Operators{Store: &operatorsignal.Store{DB: deps.DB}})
	return inc
}

func watchActivities(deps Dependencies) *activities.Watches {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		london = time.UTC
	}
	w := &activities.Watches{Store: &watch.Store{DB: deps.DB}, Directory: deps.Directory, Slack: deps.Slack, SMS: deps.SMS, London: london}
	if deps.Metrics != nil {
		w.Metrics = deps.Metrics.Watches()
	}
	return w
}

// identity is the SDK's default worker identity, pid@host.
func identity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

func nodeActivities(deps Dependencies) *activities.Nodes {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.UTC
	}
	n := &activities.Nodes{
		Store: &node.Store{DB: deps.DB}, Broker: deps.Broker, Temporal: deps.Temporal, TaskQueue: deps.NodeTaskQueue,
		CurrentDWHVersion: deps.CurrentDWHVersion, CurrentI2B2Version: deps.CurrentI2B2Version,
		Concurrency: deps.BrokerConcurrency, Mailer: deps.Mailer, MailCC: deps.MailCC, Zone: berlin,
	}
	if deps.Metrics != nil {
		n.Metrics = deps.Metrics.Nodes()
	}
	return n
}
