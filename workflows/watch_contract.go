package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// WatchWorkflowID returns the workflow ID of a capacity watch.
func WatchWorkflowID(watchID string) string { return "watch:" + watchID }

// DirectoryTaskQueue is the task queue of directory polls: its workers cap
// the activity rate for every worker together, so the directory's limit
// (2 requests a second by default) holds however many workers run.
func DirectoryTaskQueue(taskQueue string) string { return taskQueue + "-directory" }

// Names of the watch workflow's updates, signals and query.
const (
	// WatchUpdateConfigure replaces the watch's configuration.
	WatchUpdateConfigure = "configure"
	// WatchUpdatePause stops polling until resumed.
	WatchUpdatePause = "pause"
	// WatchUpdateResume resumes polling at once.
	WatchUpdateResume = "resume"
	// WatchUpdateStop ends the watch (DELETE).
	WatchUpdateStop = "stop"
	// WatchQueryStatuses returns the WatchState.
	WatchQueryStatuses = "statuses"
	// WatchSignalPause and WatchSignalResume are the operator signals
	// (payload OperatorSignal) that pause and resume a watch as the API's
	// updates of the same names do.
	WatchSignalPause  = "pause"
	WatchSignalResume = "resume"
)

// Watch kinds.
const (
	WatchKindService = "service"
	WatchKindSearch  = "search"
)

// Watch states (the WatchState search attribute).
const (
	WatchActive   = "active"
	WatchPaused   = "paused"
	WatchDegraded = "degraded"
	// WatchDeleted is the last state of a watch's run, once it was deleted
	// (DELETE /v1/watches/{id}).
	WatchDeleted = "deleted"
)

// WatchConfig is what a watch polls, how often, and whom it tells (the
// watch capability's one configuration type).
type WatchConfig = watch.Config

// WatchInput starts (or continues) a watch.
type WatchInput struct {
	WatchID string
	Config  WatchConfig
	// Carry is the state continued from the previous run.
	Carry *WatchState
	// ContinueAsNewAfterPolls is a test hook; zero continues as new at the
	// server's suggestion or every 500 polls.
	ContinueAsNewAfterPolls int
}

// ServiceState is the last known status of one watched service.
type ServiceState struct {
	// ServiceStatus is the service and its last announced (or silently
	// first seen) status: Capacity and RAG.
	watch.ServiceStatus
	// Pending is a better status seen but not yet announced, and Streak how
	// many consecutive polls have shown it.
	Pending string
	Streak  int
}

// WatchState is what a watch knows; the statuses query returns it and
// continue-as-new carries it. Services are sorted by id.
type WatchState struct {
	Config     WatchConfig
	Services   []ServiceState
	Paused     bool
	Degraded   bool
	LastError  string
	Polls      int
	LastPollAt time.Time
	// LastChange describes the latest recorded change, for the run's
	// current details ("" before the first).
	LastChange string `json:",omitempty"`
	// StateChangedBy is the operator (operator:<name>) who last paused or
	// resumed the watch by a signal, at StateChangedAt; the API's pauses
	// and resumes are recorded by the API.
	StateChangedBy string    `json:",omitempty"`
	StateChangedAt time.Time `json:",omitempty"`
}

// rank orders capacities from best to worst; a move to a lower rank is a
// recovery (subject to hysteresis), a move to a higher one is announced at
// once.
func rank(capacity string) int {
	switch capacity {
	case directory.CapacityHigh:
		return 0
	case directory.CapacityLow:
		return 1
	case directory.CapacityNone:
		return 2
	default:
		return 1 // unknown capacities are treated as a warning, never as good
	}
}

// DecideChanges applies the change rules to one poll:
//   - a service seen for the first time is recorded silently;
//   - HIGH -> "" is the directory's 24-hour ROBOT reset: recorded, not
//     announced, and the known status stays HIGH;
//   - a service that disappears from a search is reported as NONE;
//   - a worse status is announced at once; a better one only after
//     recoveryPolls consecutive polls show it (hysteresis);
//   - any other change is announced.
//
// prev must be sorted by service id; the result is too.
func DecideChanges(prev []ServiceState, obs []watch.Observation, recoveryPolls int) ([]ServiceState, []watch.Change) {
	if recoveryPolls < 1 {
		recoveryPolls = 1
	}
	seen := make([]watch.Observation, len(obs))
	copy(seen, obs)
	slices.SortFunc(seen, func(a, b watch.Observation) int { return cmp.Compare(a.ServiceID, b.ServiceID) })

	var next []ServiceState
	var changes []watch.Change
	i, j := 0, 0
	for i < len(prev) || j < len(seen) {
		switch {
		case j >= len(seen) || (i < len(prev) && prev[i].ServiceID < seen[j].ServiceID):
			// Gone from the results: reported as NONE (once).
			p := prev[i]
			if p.Capacity != directory.CapacityNone {
				changes = append(changes, watch.Change{
					Kind: watch.ChangeDisappeared, ServiceID: p.ServiceID, Name: p.Name, Region: p.Region, Type: p.Type,
					Previous: p.Capacity, PrevRAG: p.RAG, Capacity: directory.CapacityNone, Announce: true,
				})
				p.Capacity, p.RAG = directory.CapacityNone, ""
			}
			p.Pending, p.Streak = "", 0
			next = append(next, p)
			i++
		case i >= len(prev) || seen[j].ServiceID < prev[i].ServiceID:
			o := seen[j]
			changes = append(changes, change(watch.ChangeFirstSighting, ServiceState{}, o, false))
			next = append(next, ServiceState{ServiceStatus: o.ServiceStatus})
			j++
		default:
			p, o := prev[i], seen[j]
			p.Name, p.Region, p.Type = o.Name, o.Region, o.Type
			switch {
			case o.Capacity == p.Capacity:
				p.Pending, p.Streak = "", 0
			case p.Capacity == directory.CapacityHigh && o.Capacity == "":
				changes = append(changes, change(watch.ChangeRobotReset, p, o, false))
				p.Pending, p.Streak = "", 0
			case rank(o.Capacity) < rank(p.Capacity) && recoveryPolls > 1:
				if p.Pending == o.Capacity {
					p.Streak++
				} else {
					p.Pending, p.Streak = o.Capacity, 1
				}
				if p.Streak >= recoveryPolls {
					changes = append(changes, change(watch.ChangeStatus, p, o, true))
					p.Capacity, p.RAG, p.Pending, p.Streak = o.Capacity, o.RAG, "", 0
				}
			default:
				changes = append(changes, change(watch.ChangeStatus, p, o, true))
				p.Capacity, p.RAG, p.Pending, p.Streak = o.Capacity, o.RAG, "", 0
			}
			next = append(next, p)
			i++
			j++
		}
	}
	return next, changes
}

func change(kind string, p ServiceState, o watch.Observation, announce bool) watch.Change {
	return watch.Change{
		Kind: kind, ServiceID: o.ServiceID, Name: o.Name, Region: o.Region, Type: o.Type,
		Previous: p.Capacity, PrevRAG: p.RAG, Capacity: o.Capacity, RAG: o.RAG,
		ChangedBy: o.UpdatedBy, ChangedAt: o.UpdatedAt, Announce: announce,
	}
}

// watchTypeNames are short plural names of the directory's service types,
// for summaries.
var watchTypeNames = map[string]string{
	"40": "EDs", "100": "UTCs", "28": "GP access hubs", "20": "MIUs", "13": "walk-in centres", "130": "SDEC units",
}

// WatchTarget says what a watch polls: "EDs within 10 miles of LS1 4AP" or
// "service 2000001".
func WatchTarget(c WatchConfig) string {
	if c.Kind == WatchKindService {
		return "service " + c.ServiceID
	}
	types := make([]string, 0, len(c.Search.ServiceTypes))
	for _, t := range c.Search.ServiceTypes {
		name, ok := watchTypeNames[t]
		if !ok {
			name = "type " + t + " services"
		}
		types = append(types, name)
	}
	return fmt.Sprintf("%s within %d miles of %s", strings.Join(types, ", "), c.Search.DistanceMiles, c.Search.Postcode)
}

// WatchSummary is a watch's one-line summary in the Web UI, e.g.
// "Watch · UTCs within 10 miles of LS1 4AP". It names services and places,
// never people.
func WatchSummary(c WatchConfig) string { return "Watch · " + WatchTarget(c) }

// WatchDetails are a watch's fixed details in the Web UI: what it polls,
// how often, whom it tells (counts, not phone numbers) and who created it
// (a staff id).
func WatchDetails(watchID, createdBy string, c WatchConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Capacity watch %s: polls the service directory every %s (plus up to 10 %% jitter), records every snapshot and announces status changes.", watchID, HumanDuration(c.Interval))
	if c.Kind == WatchKindSearch {
		fmt.Fprintf(&b, "\nSearch: service types %s within %d miles of %s, up to %d results.",
			strings.Join(c.Search.ServiceTypes, ", "), c.Search.DistanceMiles, c.Search.Postcode, c.Search.ResultsLimit)
	} else {
		fmt.Fprintf(&b, "\nService: %s.", c.ServiceID)
	}
	if c.Description != "" {
		fmt.Fprintf(&b, "\nDescription: %s", c.Description)
	}
	notify := "no notifications"
	switch {
	case c.SlackChannel != "" && len(c.SMSNumbers) > 0:
		notify = fmt.Sprintf("Slack %s and %d SMS number(s)", c.SlackChannel, len(c.SMSNumbers))
	case c.SlackChannel != "":
		notify = "Slack " + c.SlackChannel
	case len(c.SMSNumbers) > 0:
		notify = fmt.Sprintf("%d SMS number(s)", len(c.SMSNumbers))
	}
	fmt.Fprintf(&b, "\nNotifies: %s; a recovery is announced after %d poll(s).", notify, max(c.RecoveryPolls, 1))
	if createdBy != "" {
		fmt.Fprintf(&b, "\nCreated by: %s", createdBy)
	}
	b.WriteString("\nSignals: pause, resume ({\"operator\":\"<name>\",\"reason\":\"<text>\"}). Updates: configure, pause, resume, stop. Query: statuses.")
	return b.String()
}
