package workflows

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/slacknotify"
)

// Timing rules of the incident workflow.
const (
	// LateTimerGrace is how late a step timer may fire before it counts as
	// delayed (the system was down): then one consolidated page goes out
	// instead of a burst of stale steps.
	LateTimerGrace = time.Minute
	// AssignRetryInterval is how often an unassigned incident retries
	// finding someone on call.
	AssignRetryInterval = time.Minute
	// MinResolutionNotes is the shortest accepted resolution note.
	MinResolutionNotes = 10
	// MaxNoteLength bounds notes.
	MaxNoteLength = 2000
)

// Audit actions.
const (
	ActionCreated        = "CREATED"
	ActionAlertMerged    = "ALERT_MERGED"
	ActionAssigned       = "ASSIGNED"
	ActionNobodyOnCall   = "NOBODY_ON_CALL"
	ActionPaged          = "PAGED"
	ActionEscalated      = "ESCALATED"
	ActionDelayedPage    = "DELAYED_PAGE"
	ActionAcknowledged   = "ACKNOWLEDGED"
	ActionClaimed        = "CLAIMED"
	ActionStarted        = "STARTED_PROGRESS"
	ActionStartReminder  = "START_REMINDER"
	ActionReassigned     = "REASSIGNED"
	ActionNoteAdded      = "NOTE_ADDED"
	ActionSourceResolved = "SOURCE_RESOLVED"
	ActionAutoResolved   = "AUTO_RESOLVED"
	ActionResolved       = "RESOLVED"
	// ActionSourceRefused records a source action refused because it came
	// from an integration that does not own the incident; nothing changed.
	ActionSourceRefused = "SOURCE_ACTION_REFUSED"
	// ActionOperatorRefused records an operator signal refused (bad payload
	// or a transition the state does not allow); nothing changed.
	ActionOperatorRefused = "OPERATOR_SIGNAL_REFUSED"
)

// Types of the application errors that reject a transition; the API maps
// them to HTTP status codes.
const (
	// RejectIllegal is a transition the incident's state does not allow (409).
	RejectIllegal = "IllegalTransition"
	// RejectForbidden is a transition the actor may not make (403).
	RejectForbidden = "Forbidden"
	// RejectClosed is any update to a resolved incident, or to an older
	// incident of the same dedup key (409).
	RejectClosed = "IncidentClosed"
	// RejectInvalid is a malformed request (400).
	RejectInvalid = "InvalidRequest"
)

// ErrIncidentClosed rejects updates to a resolved or replaced incident.
var ErrIncidentClosed = temporal.NewApplicationError("incident is closed", RejectClosed)

func illegal(format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), RejectIllegal)
}

func forbidden(msg string) error { return temporal.NewApplicationError(msg, RejectForbidden) }

func invalidRequest(msg string) error { return temporal.NewApplicationError(msg, RejectInvalid) }

// Incident is the durable lifecycle of one clinical incident, from the first
// alert of a dedup key to its resolution: assignment to the least-busy
// on-call person, escalation with one durable timer per step, start
// reminders, auto-resolve from the source, and an audit event for every
// change, projected to Postgres.
func Incident(ctx workflow.Context, in *IncidentInput) error {
	return setUpAndRun(ctx, &incident{in: in})
}

type incident struct {
	in    *IncidentInput
	st    IncidentState
	dirty []activities.AuditEvent
	// changes counts handled messages, so waits can wake on any of them.
	changes int
	// recording serialises projections: events reach Postgres in order.
	recording workflow.Mutex
	// runStartSeq is the audit sequence when this run started.
	runStartSeq int
	// side are Slack and SMS deliveries in flight; they never hold up the
	// incident, and the run waits for them before it closes.
	side []workflow.Future
	// sideChannels is set when this run sends Slack and SMS (runs started
	// before they existed keep their recorded command sequence).
	sideChannels *bool
	// alertAnswerFirst is set when alert updates answer before their
	// projection is written (versionAlertAnswerFirst).
	alertAnswerFirst *bool
	// localSteps is set when this run writes Postgres and pages through
	// local activities (versionLocalSteps).
	localSteps *bool
	// armedSteps is set when this run arms its escalation steps in Postgres
	// with its projection (versionArmedSteps).
	armedSteps *bool
	// upserted are the search attribute values this run last upserted
	// (status, role, incident id).
	upserted [3]string
	// pendingRecords counts projections written in their own coroutines
	// (recordSoon); the run waits for them before it closes or continues as
	// new.
	pendingRecords int
	// recordQueued is set while a recordSoon coroutine has not yet taken the
	// pending events; later changes ride with it.
	recordQueued bool
}

// versionSideChannels marks the change that added Slack and SMS deliveries.
const versionSideChannels = "notify-slack-sms"

// versionSourceScope marks the change that made source actions answer only
// to the integration that fed the incident.
const versionSourceScope = "source-integration-scope"

// versionAlertAnswerFirst marks the change that made a merged alert answer
// as soon as the incident's state has changed, its projection written after
// (it used to wait for Postgres, which could outlast the sender's patience).
const versionAlertAnswerFirst = "alert-answer-before-projection"

// answerAlertFirst reports whether this run answers alert updates before
// writing their projection; the first call records the decision in history,
// so older runs replay the record they made inside the update.
func (w *incident) answerAlertFirst(ctx workflow.Context) bool {
	return decideOnce(&w.alertAnswerFirst, func() bool {
		return workflow.GetVersion(ctx, versionAlertAnswerFirst, workflow.DefaultVersion, 1) >= 1
	})
}

// decideOnce returns *decision, deciding it on the first call: a version
// decision is recorded in history once, and later calls in the run reuse it.
func decideOnce(decision **bool, decide func() bool) bool {
	if *decision == nil {
		v := decide()
		*decision = &v
	}
	return **decision
}

// versionLocalSteps marks the change that made the short Postgres steps
// (plan, projection, pick and page) local activities, with pick and page
// folded into one (activities.PageStep), and that schedules no Slack or SMS
// delivery for a channel that is off: a page due at a timer goes out in the
// workflow task the timer wakes, not three tasks later.
const versionLocalSteps = "local-steps"

// useLocalSteps reports whether this run uses local activities for its
// Postgres steps; the first call records the decision in history, so older
// runs replay the activities they scheduled.
func (w *incident) useLocalSteps(ctx workflow.Context) bool {
	return decideOnce(&w.localSteps, func() bool {
		return workflow.GetVersion(ctx, versionLocalSteps, workflow.DefaultVersion, 1) >= 1
	})
}

// versionArmedSteps marks the change that writes, with every projection of
// an ASSIGNED incident, the escalation step it waits for (and cancels it
// with the projection that leaves ASSIGNED), so the worker's escalation
// dispatcher pages the step when it falls due without waiting for a
// workflow task; the run's own timer still runs the step and finds it done.
const versionArmedSteps = "armed-escalation-steps"

// useArmedSteps reports whether this run arms its escalation steps; the
// first call records the decision in history, so older runs replay the
// projections they wrote.
func (w *incident) useArmedSteps(ctx workflow.Context) bool {
	return decideOnce(&w.armedSteps, func() bool {
		return w.useLocalSteps(ctx) && workflow.GetVersion(ctx, versionArmedSteps, workflow.DefaultVersion, 1) >= 1
	})
}

// armedStep is the escalation step an ASSIGNED incident waits for, as
// escalate will page it when its timer fires on time; nil when it waits for
// none.
func (w *incident) armedStep(ctx workflow.Context) *activities.ArmedStep {
	if w.st.Status != StatusAssigned || w.st.NextPageDue.IsZero() || len(w.st.Plan.Steps) == 0 {
		return nil
	}
	step := w.st.Plan.Steps[min(w.st.EscalationStep, len(w.st.Plan.Steps)-1)]
	label := w.stepLabel(ctx, escalationLabel(w.st.EscalationStep, len(w.st.Plan.Steps)))
	choices := w.stepChoicesAt(step, w.st.NextPageDue)
	return &activities.ArmedStep{Due: w.st.NextPageDue, Input: activities.PageStepInput{
		Choices: choices,
		Page: activities.PageInput{
			IncidentID: w.st.IncidentID, Step: label, Kind: "INCIDENT_ESCALATED",
			Title: pageTitle(w.st.Plan.Roles, label, false), Body: w.pageBody(), Due: w.st.NextPageDue,
		},
	}}
}

// stepLabel names the escalation step the run waits for. A reassignment
// restarts the escalation; in runs that arm their steps, the restarted
// steps carry the reassignment's number ("escalation-1-r2"), so their
// recorded picks and outbox rows are new ones and the new assignee's
// silence pages someone again. Older runs keep the plain names.
func (w *incident) stepLabel(ctx workflow.Context, label string) string {
	if w.st.Reassignments > 0 && w.useArmedSteps(ctx) {
		return label + "-r" + strconv.Itoa(w.st.Reassignments)
	}
	return label
}

// escalationLabel names escalation step next (0-based) of a plan of n steps.
func escalationLabel(next, n int) string {
	if next >= n {
		return "escalation-repeat-" + strconv.Itoa(next+1)
	}
	return "escalation-" + strconv.Itoa(next+1)
}

// recordsDone reports whether every projection written in its own
// coroutine is done.
func (w *incident) recordsDone() bool { return w.pendingRecords == 0 }

// withSideChannels reports whether this run sends Slack and SMS. The first
// call records the decision in history, so replays of older runs (which never
// scheduled these activities) stay deterministic.
func (w *incident) withSideChannels(ctx workflow.Context) bool {
	return decideOnce(&w.sideChannels, func() bool {
		return workflow.GetVersion(ctx, versionSideChannels, workflow.DefaultVersion, 1) >= 1
	})
}

var (
	dbActivities     *activities.Incidents
	notifyActivities *activities.Notifier
)

func (w *incident) setup(ctx workflow.Context) error {
	if w.in == nil || w.in.IncidentID == "" || w.in.AlertType == "" {
		return temporal.NewNonRetryableApplicationError("incident id and alert type are required", "InvalidInput", nil)
	}
	if w.in.StableOKWait <= 0 {
		w.in.StableOKWait = DefaultStableOKWait
	}
	if w.in.Carry != nil {
		w.st = *w.in.Carry
	} else {
		w.st = IncidentState{
			IncidentID:  w.in.IncidentID,
			AlertType:   w.in.AlertType,
			Severity:    w.in.Severity,
			Status:      StatusOpen,
			OpenedAt:    w.in.OpenedAt,
			LastAlertAt: w.in.OpenedAt,
		}
	}
	w.recording = workflow.NewMutex(ctx)
	if w.in.Carry == nil {
		// First, before any handler can run, so CREATED is always event 1.
		w.event(ctx, ActionCreated, "system", "", "", StatusOpen, map[string]string{
			"alert_type": w.st.AlertType, "severity": w.st.Severity, "source": w.in.Source,
		})
	}
	w.runStartSeq = w.st.Seq

	if err := workflow.SetQueryHandlerWithOptions(ctx, IncidentQueryState, func() (IncidentState, error) {
		return w.st, nil
	}, workflow.QueryHandlerOptions{Description: "The incident's state: status, assignee, escalation step, timestamps."}); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	const viaAPI = " Staff only, through Vigil's API (the update carries its proof); operators use the signal of the same name."
	for _, h := range []struct {
		name        string
		validate    func(*TransitionRequest) error
		apply       func(workflow.Context, *TransitionRequest)
		description string
	}{
		{IncidentUpdateAcknowledge, w.validateAcknowledge, w.applyAcknowledge, "Acknowledge: OPEN/ASSIGNED -> ACKNOWLEDGED." + viaAPI},
		{IncidentUpdateClaim, w.validateClaim, w.applyClaim, "Claim: take the incident and acknowledge it." + viaAPI},
		{IncidentUpdateStart, w.validateStart, w.applyStart, "Start work: ACKNOWLEDGED -> IN_PROGRESS." + viaAPI},
		{IncidentUpdateResolve, w.validateResolve, w.applyResolve, "Resolve with notes." + viaAPI},
		{IncidentUpdateReassign, w.validateReassign, w.applyReassign, "Reassign (charge nurses)." + viaAPI},
		{IncidentUpdateNote, w.validateNote, w.applyNote, "Add a note." + viaAPI},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name,
			func(ctx workflow.Context, req *TransitionRequest) (*TransitionResult, error) {
				prev := w.st.Status
				h.apply(ctx, req)
				w.changes++
				if err := w.record(ctx); err != nil {
					return nil, err
				}
				return &TransitionResult{
					IncidentID: w.st.IncidentID, PreviousStatus: prev, Status: w.st.Status,
					AssignedTo: w.st.AssignedTo, At: workflow.Now(ctx),
				}, nil
			},
			workflow.UpdateHandlerOptions{Description: h.description, Validator: func(_ workflow.Context, req *TransitionRequest) error {
				if req == nil {
					return invalidRequest("empty request")
				}
				if err := w.validateOpen(req.IncidentID); err != nil {
					return err
				}
				return h.validate(req)
			}},
		); err != nil {
			return fmt.Errorf("register update %s: %w", h.name, err)
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, IncidentUpdateAlert, w.handleAlert,
		workflow.UpdateHandlerOptions{Validator: w.validateAlert,
			Description: "Merge alerts of the incident's dedup key (sent by the API with Update-With-Start)."}); err != nil {
		return fmt.Errorf("register update %s: %w", IncidentUpdateAlert, err)
	}
	w.listenToOperators(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannelWithOptions(ctx, IncidentSignalSourceResolved, workflow.SignalChannelOptions{
			Description: "The alert source reports OK (from the integration that owns the incident); resolves after a stable wait."})
		for {
			var sig SourceResolvedSignal
			ch.Receive(ctx, &sig)
			if w.onSourceSignal(ctx, &sig) {
				_ = w.record(ctx)
			}
		}
	})
	return w.upsertSearchAttributes(ctx)
}

func (w *incident) run(ctx workflow.Context) error {
	if w.in.Carry == nil {
		var plan activities.Plan
		// An activity, not a local one: the first workflow task, which
		// answers the alert that started the incident, never waits for
		// Postgres.
		if err := workflow.ExecuteActivity(summarized(dbCtx(ctx), "load the escalation plan"), dbActivities.LoadPlan,
			&activities.LoadPlanInput{AlertType: w.in.AlertType, Severity: w.in.Severity}).Get(ctx, &plan); err != nil {
			return err
		}
		w.st.Plan = toIncidentPlan(plan)
		if err := w.record(ctx); err != nil {
			return err
		}
	}
	for w.st.Status != StatusResolved {
		var err error
		switch w.st.Status {
		case StatusOpen:
			err = w.assign(ctx)
		case StatusAssigned:
			err = w.escalate(ctx)
		case StatusAcknowledged:
			err = w.remindToStart(ctx)
		case StatusInProgress:
			err = w.waitForChange(ctx, time.Time{}, "")
		}
		if err != nil {
			return err
		}
		if w.st.Status != StatusResolved && w.shouldContinueAsNew(ctx) {
			return w.continueAsNew(ctx)
		}
	}
	// Let any update, or projection, still being written finish before
	// closing.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && w.recordsDone() }); err != nil {
		return err
	}
	w.awaitSideEffects(ctx)
	return nil
}

// assign picks the least-busy on-call person of the type's roles. With
// nobody on call it pages the failsafe role once and retries every
// AssignRetryInterval, so the incident never sits OPEN silently.
func (w *incident) assign(ctx workflow.Context) error {
	if w.useLocalSteps(ctx) {
		return w.assignAndPage(ctx)
	}
	pick, err := w.pick(ctx, w.st.Plan.Roles, nil, false)
	if err != nil {
		return err
	}
	if w.st.Status != StatusOpen {
		return nil // claimed or resolved while we looked
	}
	if !pick.Found {
		return w.nobodyToAssign(ctx, pick)
	}
	now := workflow.Now(ctx)
	w.assignTo(ctx, pick)
	if err := w.page(ctx, pick.StaffID, "assign", "INCIDENT_ASSIGNED", "New incident assigned", time.Time{}, false); err != nil {
		return err
	}
	return w.assigned(ctx, now)
}

// assignAndPage is assign with pick and page in one local activity: the
// person picked is paged at once, in the same workflow task.
func (w *incident) assignAndPage(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	res, err := w.pageStep(ctx, []activities.PickChoice{{PickInput: activities.PickInput{Roles: w.st.Plan.Roles, At: now}}},
		"assign", "INCIDENT_ASSIGNED", "New incident assigned", time.Time{})
	if err != nil {
		return err
	}
	if !res.Pick.Found {
		return w.nobodyToAssign(ctx, &res.Pick)
	}
	if w.st.Status != StatusOpen {
		// Claimed or resolved while the page went out: the page is
		// recorded, the assignment is not made.
		w.paged(ctx, res, "assign", "INCIDENT_ASSIGNED", "New incident assigned", false)
		return w.record(ctx)
	}
	w.assignTo(ctx, &res.Pick)
	w.paged(ctx, res, "assign", "INCIDENT_ASSIGNED", "New incident assigned", false)
	return w.assigned(ctx, now)
}

// assignTo makes the picked person the assignee.
func (w *incident) assignTo(ctx workflow.Context, pick *activities.PickResult) {
	prev := w.st.Status
	w.st.Status = StatusAssigned
	w.st.AssignedTo, w.st.AssignedRole, w.st.AssignedAt = pick.StaffID, pick.Role, workflow.Now(ctx)
	w.event(ctx, ActionAssigned, "system", "", prev, StatusAssigned, map[string]string{
		"staff_id": pick.StaffID, "role": pick.Role, "reason": pick.Reason,
		"in_progress": strconv.Itoa(pick.InProgress), "open": strconv.Itoa(pick.Open),
		"candidates": strconv.Itoa(pick.Candidates), "fallback": strconv.FormatBool(pick.Fallback),
		"policy": w.st.Plan.PolicyID, "roles": strings.Join(w.st.Plan.Roles, ","),
	})
}

// assigned starts the escalation clock of a newly assigned incident and
// records it.
func (w *incident) assigned(ctx workflow.Context, now time.Time) error {
	w.st.EscalationStep = 0
	w.scheduleNextStep(now)
	if err := w.upsertSearchAttributes(ctx); err != nil {
		return err
	}
	return w.record(ctx)
}

// nobodyToAssign pages the failsafe role once about an incident nobody is
// on call for, and waits AssignRetryInterval (or a change) to try again.
func (w *incident) nobodyToAssign(ctx workflow.Context, pick *activities.PickResult) error {
	if !w.st.FailsafePaged {
		w.st.FailsafePaged = true
		w.event(ctx, ActionNobodyOnCall, "system", "", StatusOpen, StatusOpen, map[string]string{
			"roles": strings.Join(w.st.Plan.Roles, ","), "reason": pick.Reason,
		})
		if err := w.pageTarget(ctx, EscalationStep{Target: TargetFailsafe}, "failsafe-unassigned", time.Time{}, false); err != nil {
			return err
		}
		if err := w.record(ctx); err != nil {
			return err
		}
	}
	return w.waitForChange(ctx, workflow.Now(ctx).Add(AssignRetryInterval), "retry finding someone on call")
}

// escalate waits for an acknowledgement until the next step is due, then
// pages that step's target. A step that fires far later than planned pages
// once, marked delayed, for the latest overdue step.
func (w *incident) escalate(ctx workflow.Context) error {
	if err := w.waitForChange(ctx, w.st.NextPageDue, "escalation step "+strconv.Itoa(w.st.EscalationStep+1)+" due"); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	if w.st.Status != StatusAssigned || now.Before(w.st.NextPageDue) {
		return nil
	}
	fire, skipped, delayed := PlanEscalation(w.st.Plan.Steps, w.st.EscalationStep, w.st.NextPageDue, now)
	step := w.st.Plan.Steps[fire]
	label := w.stepLabel(ctx, escalationLabel(w.st.EscalationStep, len(w.st.Plan.Steps)))
	if delayed {
		w.event(ctx, ActionDelayedPage, "system", "", StatusAssigned, StatusAssigned, map[string]string{
			"due": w.st.NextPageDue.UTC().Format(time.RFC3339), "late_by": now.Sub(w.st.NextPageDue).String(),
			"skipped_steps": strconv.Itoa(skipped), "paging_step": strconv.Itoa(fire + 1),
		})
		// Named after the step actually paged (the latest overdue one),
		// not the first overdue step.
		label = w.stepLabel(ctx, "delayed-"+strconv.Itoa(fire+1))
	}
	// A delayed page of the step the run armed may have gone out already,
	// from the escalation dispatcher, under the step's own name.
	pagedAs := ""
	if delayed && skipped == 0 && w.useArmedSteps(ctx) {
		pagedAs = w.stepLabel(ctx, escalationLabel(w.st.EscalationStep, len(w.st.Plan.Steps)))
	}
	if err := w.pageTargetAs(ctx, step, label, pagedAs, w.st.NextPageDue, delayed); err != nil {
		return err
	}
	w.st.EscalationStep += 1 + skipped
	w.scheduleNextStep(now)
	if err := w.upsertSearchAttributes(ctx); err != nil {
		return err
	}
	return w.record(ctx)
}

// PlanEscalation decides which step fires when the timer for step next (due
// at due) wakes at now: normally next itself. When the wake-up is more than
// LateTimerGrace late, every further step already overdue is skipped and only
// the latest fires (delayed). Past the last step, the last step repeats.
func PlanEscalation(steps []EscalationStep, next int, due, now time.Time) (fire, skipped int, delayed bool) {
	last := len(steps) - 1
	fire = min(next, last)
	if now.Sub(due) <= LateTimerGrace {
		return fire, 0, false
	}
	for fire < last && !due.Add(steps[fire+1].Wait).After(now) {
		due = due.Add(steps[fire+1].Wait)
		fire++
		skipped++
	}
	return fire, skipped, true
}

// scheduleNextStep sets when the next escalation step is due; past the last
// step, the last step's wait repeats.
func (w *incident) scheduleNextStep(from time.Time) {
	steps := w.st.Plan.Steps
	if len(steps) == 0 {
		w.st.NextPageDue = time.Time{}
		return
	}
	i := min(w.st.EscalationStep, len(steps)-1)
	w.st.NextPageDue = from.Add(steps[i].Wait)
}

// remindToStart re-pages the assignee of an acknowledged incident nobody has
// started within the plan's start reminder.
func (w *incident) remindToStart(ctx workflow.Context) error {
	if w.st.Plan.StartReminder <= 0 {
		return w.waitForChange(ctx, time.Time{}, "")
	}
	due := w.st.AcknowledgedAt.Add(time.Duration(w.st.Reminders+1) * w.st.Plan.StartReminder)
	if err := w.waitForChange(ctx, due, "start reminder "+strconv.Itoa(w.st.Reminders+1)+" due"); err != nil {
		return err
	}
	if w.st.Status != StatusAcknowledged || workflow.Now(ctx).Before(due) {
		return nil
	}
	w.st.Reminders++
	w.event(ctx, ActionStartReminder, "system", "", StatusAcknowledged, StatusAcknowledged, map[string]string{
		"staff_id": w.st.AssignedTo, "reminder": strconv.Itoa(w.st.Reminders),
	})
	label := "reminder-" + strconv.Itoa(w.st.Reminders)
	var err error
	if w.st.AssignedTo == "" {
		// Acknowledged at the source with nobody assigned: the failsafe
		// role is reminded instead.
		err = w.pageTarget(ctx, EscalationStep{Target: TargetFailsafe}, label, due, false)
	} else {
		err = w.page(ctx, w.st.AssignedTo, label, "START_REMINDER", "Acknowledged incident not started", due, false)
	}
	if err != nil {
		return err
	}
	return w.record(ctx)
}

// waitForChange blocks until a message changes the incident, the deadline
// passes (zero: no deadline), or a pending auto-resolve comes due, which it
// then carries out.
func (w *incident) waitForChange(ctx workflow.Context, deadline time.Time, why string) error {
	seen := w.changes
	for {
		wake := deadline
		if !w.st.SourceOKSince.IsZero() {
			okAt := w.st.SourceOKSince.Add(w.in.StableOKWait)
			if wake.IsZero() || okAt.Before(wake) {
				wake = okAt
			}
		}
		cond := func() bool { return w.changes != seen }
		if wake.IsZero() {
			if err := workflow.Await(ctx, cond); err != nil {
				return err
			}
			return nil
		}
		d := wake.Sub(workflow.Now(ctx))
		if d > 0 {
			summary := why
			if !wake.Equal(deadline) {
				summary = "auto-resolve if the source stays OK"
			}
			changed, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout: d, TimerOptions: workflow.TimerOptions{Summary: summary}}, cond)
			if err != nil {
				return err
			}
			if changed {
				return nil
			}
		}
		now := workflow.Now(ctx)
		if !w.st.SourceOKSince.IsZero() && !now.Before(w.st.SourceOKSince.Add(w.in.StableOKWait)) {
			return w.autoResolve(ctx)
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			return nil
		}
	}
}

// sourceRefusal is why an incident refuses a source action from
// integration, or "" when it accepts it. Runs without an owner (started
// before integrations were scoped) accept every source, as they did.
func (w *incident) sourceRefusal(integration string) string {
	switch {
	case w.in.Integration == "":
		return ""
	case integration == IntegrationStaff:
		return "staff act on incidents through the staff routes, not as a source"
	case integration != w.in.Integration:
		return "the incident belongs to another integration"
	default:
		return ""
	}
}

// onSourceSignal handles a source-resolved signal: from the owning
// integration it starts the stable-OK wait; from any other it changes
// nothing and records the refusal. It reports whether there is anything to
// record.
func (w *incident) onSourceSignal(ctx workflow.Context, sig *SourceResolvedSignal) bool {
	reason := w.sourceRefusal(sig.Integration)
	if reason == "" || workflow.GetVersion(ctx, versionSourceScope, workflow.DefaultVersion, 1) < 1 {
		return w.onSourceResolved(ctx)
	}
	actorID := sig.Source
	if actorID == "" {
		actorID = sig.Integration
	}
	w.event(ctx, ActionSourceRefused, "source", actorID, w.st.Status, w.st.Status, map[string]string{
		"action": IncidentSignalSourceResolved, "integration": sig.Integration, "reason": reason,
	})
	return true
}

// onSourceResolved starts the stable-OK wait; it reports whether anything
// changed.
func (w *incident) onSourceResolved(ctx workflow.Context) bool {
	if w.st.Status == StatusResolved || !w.st.SourceOKSince.IsZero() {
		return false
	}
	w.st.SourceOKSince = workflow.Now(ctx)
	w.event(ctx, ActionSourceResolved, "source", "", w.st.Status, w.st.Status, map[string]string{
		"stable_ok_wait": w.in.StableOKWait.String(),
	})
	w.changes++
	return true
}

func (w *incident) autoResolve(ctx workflow.Context) error {
	prev := w.st.Status
	w.markResolved(workflow.Now(ctx), "source",
		"Auto-resolved: the source reported the condition cleared and it stayed clear for "+w.in.StableOKWait.String()+".")
	w.event(ctx, ActionAutoResolved, "source", "", prev, StatusResolved, nil)
	if err := w.upsertSearchAttributes(ctx); err != nil {
		return err
	}
	return w.record(ctx)
}

// --- alerts -----------------------------------------------------------------

// maxIdempotencyKeyHash bounds one key of AlertUpdate.IdempotencyKeys (an
// IdempotencyKeyHash is 32 hex digits).
const maxIdempotencyKeyHash = 64

func (w *incident) validateAlert(_ workflow.Context, u *AlertUpdate) error {
	if u == nil || u.Count < 1 {
		return invalidRequest("alert count must be at least 1")
	}
	if len(u.IdempotencyKeys) > u.Count {
		return invalidRequest("more idempotency keys than alerts")
	}
	for _, k := range u.IdempotencyKeys {
		if len(k) > maxIdempotencyKeyHash {
			return invalidRequest("an idempotency key must be a hash of at most 64 characters")
		}
	}
	if w.st.Status == StatusResolved {
		return ErrIncidentClosed
	}
	return nil
}

// handleAlert counts the alerts of u that the incident has not counted
// before (by idempotency key). A merge answers as soon as the state has
// changed; its projection is written after, in its own coroutine, so the
// sender never waits on Postgres (runs before versionAlertAnswerFirst wrote
// it first).
func (w *incident) handleAlert(ctx workflow.Context, u *AlertUpdate) (*AlertResult, error) {
	dups := w.rememberAlertKeys(u.IdempotencyKeys)
	counted := u.Count - len(dups)
	created := !w.st.AlertSeen
	if counted > 0 || created {
		w.st.AlertSeen = true
		w.st.AlertCount += counted
		if !u.ObservedAt.IsZero() && u.ObservedAt.After(w.st.LastAlertAt) {
			w.st.LastAlertAt = u.ObservedAt
		}
		// A new firing cancels a pending auto-resolve.
		w.st.SourceOKSince = time.Time{}
	}
	if !created && counted > 0 {
		w.event(ctx, ActionAlertMerged, "source", "", w.st.Status, w.st.Status, map[string]string{
			"count": strconv.Itoa(counted), "total": strconv.Itoa(w.st.AlertCount),
		})
		w.changes++
		if w.answerAlertFirst(ctx) {
			w.recordSoon(ctx)
		} else if err := w.record(ctx); err != nil {
			return nil, err
		}
	}
	return &AlertResult{
		IncidentID: w.st.IncidentID, Created: created, AlertCount: w.st.AlertCount, Status: w.st.Status, Duplicates: dups,
	}, nil
}

// rememberAlertKeys remembers the idempotency keys not seen before and
// returns the positions of those already counted (a key repeated within
// keys included). Only the latest MaxRememberedAlertKeys are kept.
func (w *incident) rememberAlertKeys(keys []string) []int {
	var dups []int
	for i, k := range keys {
		switch {
		case k == "":
		case slices.Contains(w.st.AlertKeys, k):
			dups = append(dups, i)
		default:
			w.st.AlertKeys = append(w.st.AlertKeys, k)
		}
	}
	if n := len(w.st.AlertKeys) - MaxRememberedAlertKeys; n > 0 {
		w.st.AlertKeys = append([]string(nil), w.st.AlertKeys[n:]...)
	}
	return dups
}

// recordSoon writes the projection in a coroutine of its own, so the caller
// need not wait for Postgres. Changes made while one is queued ride with it.
// A projection that cannot be written within its activity's hour of
// retries is logged; the next record writes the whole row again.
func (w *incident) recordSoon(ctx workflow.Context) {
	if w.recordQueued {
		return
	}
	w.recordQueued = true
	w.pendingRecords++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { w.pendingRecords-- }()
		// An activity, not a local one: a local activity would hold the
		// workflow task, and with it the alert's answer, until Postgres
		// answered.
		if err := w.recordWith(ctx, false); err != nil {
			workflow.GetLogger(ctx).Error("incident projection not written", "incident_id", w.st.IncidentID, "error", err)
		}
	})
}

// --- operator signals ---------------------------------------------------------

// versionOperatorSignals marks the change that made the incident act on the
// operator signals (runs before it recorded and ignored them).
const versionOperatorSignals = "operator-signals"

// listenToOperators handles the operator signals for the life of the run.
func (w *incident) listenToOperators(ctx workflow.Context) {
	descriptions := map[string]string{
		IncidentSignalAcknowledge: `Acknowledge as an operator: {"operator": "<name>"}. OPEN or ASSIGNED only; stops the escalation.`,
		IncidentSignalResolve:     `Resolve as an operator: {"operator": "<name>", "notes": "<10 to 2000 characters>"}. ACKNOWLEDGED or IN_PROGRESS only.`,
		IncidentSignalNote:        `Add a note as an operator: {"operator": "<name>", "notes": "<1 to 2000 characters>"}.`,
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		sel := workflow.NewSelector(ctx)
		for _, name := range []string{IncidentSignalAcknowledge, IncidentSignalResolve, IncidentSignalNote} {
			ch := workflow.GetSignalChannelWithOptions(ctx, name, workflow.SignalChannelOptions{Description: descriptions[name]})
			sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
				var sig OperatorSignal
				c.Receive(ctx, &sig) // a payload that does not decode leaves sig empty: refused below
				w.onOperatorSignal(ctx, name, &sig)
			})
		}
		for {
			sel.Select(ctx)
		}
	})
}

// onOperatorSignal applies an operator signal, or records why it was
// refused, and writes the projection.
func (w *incident) onOperatorSignal(ctx workflow.Context, name string, sig *OperatorSignal) {
	if workflow.GetVersion(ctx, versionOperatorSignals, workflow.DefaultVersion, 1) < 1 {
		return
	}
	actor := "operator:" + sig.Operator
	if !ValidOperatorName(sig.Operator) {
		actor = "operator:?"
	}
	// The run waits for this projection before it closes.
	w.pendingRecords++
	defer func() { w.pendingRecords-- }()
	prev := w.st.Status
	if reason := w.operatorRefusal(name, sig); reason != "" {
		w.event(ctx, ActionOperatorRefused, "operator", actor, prev, prev, map[string]string{"signal": name, "reason": reason})
		workflow.GetLogger(ctx).Warn("operator signal refused", "incident_id", w.st.IncidentID, "signal", name,
			"operator", actor, "reason", reason)
	} else {
		now := workflow.Now(ctx)
		switch name {
		case IncidentSignalAcknowledge:
			// The escalation stops; the assignee, if any, stays.
			w.markAcknowledged(now)
			w.event(ctx, ActionAcknowledged, "operator", actor, prev, StatusAcknowledged, nil)
		case IncidentSignalResolve:
			w.markResolved(now, actor, strings.TrimSpace(sig.Notes))
			w.event(ctx, ActionResolved, "operator", actor, prev, StatusResolved, nil)
		case IncidentSignalNote:
			w.event(ctx, ActionNoteAdded, "operator", actor, prev, prev, map[string]string{"note": strings.TrimSpace(sig.Notes)})
		}
		if w.st.Status != prev {
			_ = w.upsertSearchAttributes(ctx)
		}
	}
	w.changes++
	if err := w.record(ctx); err != nil {
		workflow.GetLogger(ctx).Error("incident projection not written", "incident_id", w.st.IncidentID, "error", err)
	}
}

// operatorRefusal is why an operator signal is refused, or "".
func (w *incident) operatorRefusal(name string, sig *OperatorSignal) string {
	if !ValidOperatorName(sig.Operator) {
		return `the payload must name the operator: {"operator": "<1 to 64 letters, digits or . - _ @>"}`
	}
	notes := len([]rune(strings.TrimSpace(sig.Notes)))
	switch {
	case w.st.Status == StatusResolved:
		return "the incident is resolved"
	case name == IncidentSignalAcknowledge && w.st.Status != StatusOpen && w.st.Status != StatusAssigned:
		return "cannot acknowledge an incident that is " + w.st.Status
	case name == IncidentSignalResolve && (notes < MinResolutionNotes || notes > MaxNoteLength || strings.ContainsRune(sig.Notes, 0)):
		return fmt.Sprintf(`resolution notes must be %d to %d characters of text: {"operator": "<name>", "notes": "..."}`, MinResolutionNotes, MaxNoteLength)
	case name == IncidentSignalResolve && w.st.Status != StatusAcknowledged && w.st.Status != StatusInProgress:
		return "cannot resolve an incident that is " + w.st.Status + "; acknowledge it first"
	case name == IncidentSignalNote && (notes < 1 || notes > MaxNoteLength || strings.ContainsRune(sig.Notes, 0)):
		return fmt.Sprintf(`a note must be 1 to %d characters of text: {"operator": "<name>", "notes": "..."}`, MaxNoteLength)
	}
	return ""
}

// --- transitions --------------------------------------------------------------

func (w *incident) validateOpen(incidentID string) error {
	if incidentID != "" && incidentID != w.st.IncidentID {
		return ErrIncidentClosed
	}
	if w.st.Status == StatusResolved {
		return ErrIncidentClosed
	}
	return nil
}

func isCharge(a Actor) bool { return a.Access == AccessCharge || a.Access == AccessAdmin }

func (w *incident) isResponder(staffID string) bool {
	return staffID != "" && (staffID == w.st.AssignedTo || slices.Contains(w.st.Responders, staffID))
}

func requireActor(a Actor) error {
	if a.StaffID == "" {
		return forbidden("the acting staff member is unknown")
	}
	return nil
}

func (w *incident) validateAcknowledge(req *TransitionRequest) error {
	if w.st.Status != StatusOpen && w.st.Status != StatusAssigned {
		return illegal("cannot acknowledge an incident that is %s", w.st.Status)
	}
	if req.Actor.Access == AccessSource {
		if req.Actor.Source == "" {
			return forbidden("the acknowledging source is unknown")
		}
		if reason := w.sourceRefusal(req.Actor.Integration); reason != "" {
			return forbidden(reason)
		}
		return nil
	}
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	if !w.isResponder(req.Actor.StaffID) && !isCharge(req.Actor) {
		return forbidden("only a paged responder or a charge nurse may acknowledge this incident")
	}
	return nil
}

func (w *incident) applyAcknowledge(ctx workflow.Context, req *TransitionRequest) {
	if req.Actor.Access == AccessSource {
		// The source acknowledged (e.g. at the bedside monitor): the
		// escalation stops, the assignee stays.
		prev := w.st.Status
		w.markAcknowledged(workflow.Now(ctx))
		w.event(ctx, ActionAcknowledged, "source", req.Actor.Source, prev, StatusAcknowledged, nil)
		_ = w.upsertSearchAttributes(ctx)
		return
	}
	w.acknowledge(ctx, req.Actor.StaffID, ActionAcknowledged)
}

func (w *incident) acknowledge(ctx workflow.Context, staffID, action string) {
	prev := w.st.Status
	now := workflow.Now(ctx)
	if w.st.AssignedTo != staffID {
		w.st.AssignedTo = staffID
		if w.st.AssignedAt.IsZero() {
			w.st.AssignedAt = now
		}
	}
	w.markAcknowledged(now)
	w.event(ctx, action, "staff", staffID, prev, StatusAcknowledged, nil)
	_ = w.upsertSearchAttributes(ctx)
}

// markAcknowledged acknowledges the incident at now, keeping the time of
// its first acknowledgement, and stops the escalation reminders.
func (w *incident) markAcknowledged(now time.Time) {
	w.st.Status = StatusAcknowledged
	if w.st.AcknowledgedAt.IsZero() {
		w.st.AcknowledgedAt = now
	}
	w.st.Reminders = 0
}

// markResolved resolves the incident at now by resolvedBy, with the
// resolution's text, and forgets when the source last reported OK.
func (w *incident) markResolved(now time.Time, resolvedBy, resolution string) {
	w.st.Status = StatusResolved
	w.st.ResolvedAt = now
	w.st.ResolvedBy = resolvedBy
	w.st.Resolution = resolution
	w.st.SourceOKSince = time.Time{}
}

func (w *incident) validateClaim(req *TransitionRequest) error {
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	switch w.st.Status {
	case StatusOpen, StatusAssigned:
		return nil
	case StatusAcknowledged:
		if w.st.AssignedTo == req.Actor.StaffID {
			return illegal("the incident is already yours")
		}
		if !isCharge(req.Actor) {
			return forbidden("only a charge nurse may take over an acknowledged incident")
		}
		return nil
	default:
		return illegal("cannot claim an incident that is %s", w.st.Status)
	}
}

func (w *incident) applyClaim(ctx workflow.Context, req *TransitionRequest) {
	w.acknowledge(ctx, req.Actor.StaffID, ActionClaimed)
}

func (w *incident) validateStart(req *TransitionRequest) error {
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	if w.st.Status != StatusAcknowledged {
		return illegal("cannot start an incident that is %s; acknowledge it first", w.st.Status)
	}
	if w.st.AssignedTo != req.Actor.StaffID && !isCharge(req.Actor) {
		return forbidden("only the assignee or a charge nurse may start this incident")
	}
	return nil
}

func (w *incident) applyStart(ctx workflow.Context, req *TransitionRequest) {
	prev := w.st.Status
	w.st.Status = StatusInProgress
	w.st.InProgressAt = workflow.Now(ctx)
	w.event(ctx, ActionStarted, "staff", req.Actor.StaffID, prev, StatusInProgress, nil)
	_ = w.upsertSearchAttributes(ctx)
}

func (w *incident) validateResolve(req *TransitionRequest) error {
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	if n := len([]rune(strings.TrimSpace(req.Notes))); n < MinResolutionNotes || n > MaxNoteLength || strings.ContainsRune(req.Notes, 0) {
		return invalidRequest(fmt.Sprintf("resolution notes must be %d to %d characters of text", MinResolutionNotes, MaxNoteLength))
	}
	if isCharge(req.Actor) {
		return nil
	}
	if w.st.Status != StatusAcknowledged && w.st.Status != StatusInProgress {
		return illegal("cannot resolve an incident that is %s; acknowledge it first", w.st.Status)
	}
	if w.st.AssignedTo != req.Actor.StaffID {
		return forbidden("only the assignee or a charge nurse may resolve this incident")
	}
	return nil
}

func (w *incident) applyResolve(ctx workflow.Context, req *TransitionRequest) {
	prev := w.st.Status
	w.markResolved(workflow.Now(ctx), req.Actor.StaffID, strings.TrimSpace(req.Notes))
	w.event(ctx, ActionResolved, "staff", req.Actor.StaffID, prev, StatusResolved, nil)
	_ = w.upsertSearchAttributes(ctx)
}

func (w *incident) validateReassign(req *TransitionRequest) error {
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	if !isCharge(req.Actor) {
		return forbidden("only a charge nurse may reassign an incident")
	}
	if req.ToStaffID == "" {
		return invalidRequest("the new assignee is required")
	}
	if req.ToStaffID == w.st.AssignedTo {
		return illegal("the incident is already assigned to %s", req.ToStaffID)
	}
	return nil
}

func (w *incident) applyReassign(ctx workflow.Context, req *TransitionRequest) {
	prev := w.st.Status
	from := w.st.AssignedTo
	now := workflow.Now(ctx)
	w.st.AssignedTo = req.ToStaffID
	if w.st.AssignedAt.IsZero() {
		w.st.AssignedAt = now
	}
	// The new assignee must acknowledge for themselves; escalation restarts.
	w.st.Status = StatusAssigned
	w.st.EscalationStep = 0
	w.scheduleNextStep(now)
	w.event(ctx, ActionReassigned, "staff", req.Actor.StaffID, prev, StatusAssigned, map[string]string{
		"from": from, "to": req.ToStaffID,
	})
	_ = w.upsertSearchAttributes(ctx)
	// Page the new assignee from the update handler: the caller's answer
	// waits for it, so a successful reassign means they were paged.
	w.st.Reassignments++
	_ = w.page(ctx, req.ToStaffID, "reassign-"+strconv.Itoa(w.st.Reassignments), "INCIDENT_REASSIGNED", "Incident reassigned to you", time.Time{}, false)
}

func (w *incident) validateNote(req *TransitionRequest) error {
	if err := requireActor(req.Actor); err != nil {
		return err
	}
	if n := len([]rune(strings.TrimSpace(req.Notes))); n < 1 || n > MaxNoteLength || strings.ContainsRune(req.Notes, 0) {
		return invalidRequest(fmt.Sprintf("a note must be 1 to %d characters of text", MaxNoteLength))
	}
	return nil
}

func (w *incident) applyNote(ctx workflow.Context, req *TransitionRequest) {
	w.event(ctx, ActionNoteAdded, "staff", req.Actor.StaffID, w.st.Status, w.st.Status, map[string]string{
		"note": strings.TrimSpace(req.Notes),
	})
}

// --- side effects through activities ----------------------------------------

// pick asks for an on-call person.
func (w *incident) pick(ctx workflow.Context, roles, exclude []string, failsafe bool) (*activities.PickResult, error) {
	var res activities.PickResult
	err := workflow.ExecuteActivity(dbCtx(ctx), dbActivities.Pick, &activities.PickInput{
		Roles: roles, At: workflow.Now(ctx), Exclude: exclude, FailsafeOnly: failsafe,
	}).Get(ctx, &res)
	return &res, err
}

// pageTarget resolves an escalation target to a person at fire time, pages
// them and makes them the assignee. due is when the page was due (zero for
// a page sent at once).
func (w *incident) pageTarget(ctx workflow.Context, step EscalationStep, label string, due time.Time, delayed bool) error {
	return w.pageTargetAs(ctx, step, label, "", due, delayed)
}

// pageTargetAs is pageTarget for a step the escalation dispatcher may have
// paged as pagedAs ("": none).
func (w *incident) pageTargetAs(ctx workflow.Context, step EscalationStep, label, pagedAs string, due time.Time, delayed bool) error {
	title := pageTitle(w.st.Plan.Roles, label, delayed)
	if w.useLocalSteps(ctx) {
		res, err := w.runPageStep(ctx, &activities.PageStepInput{
			Choices: w.stepChoices(ctx, step), PagedAs: pagedAs,
			Page: activities.PageInput{IncidentID: w.st.IncidentID, Step: label, Kind: "INCIDENT_ESCALATED", Title: title, Body: w.pageBody(), Due: due},
		})
		if err != nil {
			return err
		}
		if !res.Pick.Found {
			w.nobodyForStep(ctx, step, label)
			return nil
		}
		w.escalateTo(ctx, &res.Pick, label)
		w.paged(ctx, res, label, "INCIDENT_ESCALATED", title, delayed)
		return nil
	}
	var (
		pick *activities.PickResult
		err  error
	)
	switch step.Target {
	case TargetRole:
		pick, err = w.pick(ctx, []string{step.Role}, w.st.Responders, false)
	case TargetNextInRole:
		role := w.st.AssignedRole
		if role == "" && len(w.st.Plan.Roles) > 0 {
			role = w.st.Plan.Roles[0]
		}
		pick, err = w.pick(ctx, []string{role}, w.st.Responders, false)
		if err == nil && pick.Found && pick.Fallback {
			pick.Found = false // another role's person is not "next in role"
		}
	}
	if err != nil {
		return err
	}
	if pick == nil || !pick.Found {
		// Nobody (new) for the step's target: the failsafe role is paged.
		if pick, err = w.pick(ctx, nil, nil, true); err != nil {
			return err
		}
	}
	if !pick.Found {
		w.nobodyForStep(ctx, step, label)
		return nil
	}
	w.escalateTo(ctx, pick, label)
	return w.page(ctx, pick.StaffID, label, "INCIDENT_ESCALATED", title, due, delayed)
}

// pageTitle is the title of an escalation target's page.
func pageTitle(roles []string, label string, delayed bool) string {
	switch {
	case label == "failsafe-unassigned":
		return "Unassigned incident: nobody on call for " + strings.Join(roles, ", ")
	case delayed:
		return "Delayed page: incident still unacknowledged"
	default:
		return "Escalated incident: no acknowledgement"
	}
}

// stepChoices are the ways to find whom an escalation step pages, in
// order: the step's target (a role, or the next person in the role), then
// the failsafe role.
func (w *incident) stepChoices(ctx workflow.Context, step EscalationStep) []activities.PickChoice {
	return w.stepChoicesAt(step, workflow.Now(ctx))
}

// stepChoicesAt is stepChoices for a step picked at now.
func (w *incident) stepChoicesAt(step EscalationStep, now time.Time) []activities.PickChoice {
	var choices []activities.PickChoice
	switch step.Target {
	case TargetRole:
		choices = append(choices, activities.PickChoice{PickInput: activities.PickInput{
			Roles: []string{step.Role}, At: now, Exclude: w.st.Responders}})
	case TargetNextInRole:
		role := w.st.AssignedRole
		if role == "" && len(w.st.Plan.Roles) > 0 {
			role = w.st.Plan.Roles[0]
		}
		// Another role's person is not "next in role".
		choices = append(choices, activities.PickChoice{SameRoleOnly: true, PickInput: activities.PickInput{
			Roles: []string{role}, At: now, Exclude: w.st.Responders}})
	}
	// Nobody (new) for the step's target: the failsafe role is paged.
	return append(choices, activities.PickChoice{PickInput: activities.PickInput{At: now, FailsafeOnly: true}})
}

// nobodyForStep records a step that found nobody to page.
func (w *incident) nobodyForStep(ctx workflow.Context, step EscalationStep, label string) {
	w.event(ctx, ActionNobodyOnCall, "system", "", w.st.Status, w.st.Status, map[string]string{
		"step": label, "target": step.Target, "reason": "not even the failsafe role has anyone on call",
	})
}

// escalateTo makes the person a step paged the assignee of an assigned
// incident.
func (w *incident) escalateTo(ctx workflow.Context, pick *activities.PickResult, label string) {
	if w.st.Status != StatusAssigned || w.st.AssignedTo == pick.StaffID {
		return
	}
	from := w.st.AssignedTo
	w.st.AssignedTo, w.st.AssignedRole = pick.StaffID, pick.Role
	w.event(ctx, ActionEscalated, "system", "", StatusAssigned, StatusAssigned, map[string]string{
		"from": from, "to": pick.StaffID, "role": pick.Role, "step": label, "reason": pick.Reason,
	})
}

// pageStep picks and pages in one local activity (activities.PageStep).
func (w *incident) pageStep(ctx workflow.Context, choices []activities.PickChoice, step, kind, title string, due time.Time) (*activities.PageStepResult, error) {
	return w.runPageStep(ctx, &activities.PageStepInput{
		Choices: choices,
		Page:    activities.PageInput{IncidentID: w.st.IncidentID, Step: step, Kind: kind, Title: title, Body: w.pageBody(), Due: due},
	})
}

// pageTo pages a known person in one local activity.
func (w *incident) pageTo(ctx workflow.Context, staffID, step, kind, title string, due time.Time) (*activities.PageStepResult, error) {
	return w.runPageStep(ctx, &activities.PageStepInput{Page: activities.PageInput{
		IncidentID: w.st.IncidentID, Step: step, Recipient: staffID, Kind: kind, Title: title, Body: w.pageBody(), Due: due,
	}})
}

func (w *incident) runPageStep(ctx workflow.Context, in *activities.PageStepInput) (*activities.PageStepResult, error) {
	var res activities.PageStepResult
	summary := "pick and page: " + in.Page.Step
	if in.Page.Recipient != "" {
		summary = "page " + in.Page.Recipient + ": " + in.Page.Step
	}
	err := workflow.ExecuteLocalActivity(summarizedLocal(localPageCtx(ctx), summary), dbActivities.PageStep, in).Get(ctx, &res)
	return &res, err
}

// pageBody is the text of every page about the incident.
func (w *incident) pageBody() string {
	return fmt.Sprintf("%s %s incident (%s). Alerts: %d.", w.st.Severity, w.st.AlertType, w.in.Room, w.st.AlertCount)
}

// paged records a page sent by pageStep, and sends it by SMS as well when
// SMS is on.
func (w *incident) paged(ctx workflow.Context, res *activities.PageStepResult, step, kind, title string, delayed bool) {
	if res.SMS {
		w.sendSMS(ctx, res.Pick.StaffID, step, title)
	}
	w.afterPage(ctx, res.Pick.StaffID, step, kind, &res.Page, delayed)
}

// sendSMS sends a page by SMS, in the background: a bad number is recorded
// in the outbox and in-app remains the channel.
func (w *incident) sendSMS(ctx workflow.Context, staffID, step, title string) {
	w.side = append(w.side, workflow.ExecuteActivity(summarized(sideCtx(ctx), "SMS page "+step+" to "+staffID), notifyActivities.SendSMS, &activities.SMSInput{
		IncidentID: w.st.IncidentID, Step: step, Recipient: staffID, Body: title + ": " + w.pageBody(),
	}))
}

// afterPage updates the incident's state after a page.
func (w *incident) afterPage(ctx workflow.Context, staffID, step, kind string, res *activities.PageResult, delayed bool) {
	now := workflow.Now(ctx)
	w.st.LastPageAt = now
	if res.Delivered && w.st.FirstPagedAt.IsZero() {
		w.st.FirstPagedAt = res.DeliveredAt
	}
	if !slices.Contains(w.st.Responders, staffID) {
		w.st.Responders = append(w.st.Responders, staffID)
	}
	w.event(ctx, ActionPaged, "system", "", w.st.Status, w.st.Status, map[string]string{
		"staff_id": staffID, "step": step, "kind": kind, "delayed": strconv.FormatBool(delayed),
	})
}

// page sends one page and records it. due is when a timer-scheduled page
// (escalation step, start reminder) was due, zero for one sent at once; the
// outbox keeps it so a page's lateness can be measured.
func (w *incident) page(ctx workflow.Context, staffID, step, kind, title string, due time.Time, delayed bool) error {
	if w.useLocalSteps(ctx) {
		// A known recipient (a start reminder): the same one-step page,
		// picking nobody.
		res, err := w.pageTo(ctx, staffID, step, kind, title, due)
		if err != nil {
			return err
		}
		w.paged(ctx, res, step, kind, title, delayed)
		return nil
	}
	var res activities.PageResult
	err := workflow.ExecuteActivity(pageCtx(ctx), dbActivities.Page, &activities.PageInput{
		IncidentID: w.st.IncidentID, Step: step, Recipient: staffID, Kind: kind, Title: title, Body: w.pageBody(), Due: due,
	}).Get(ctx, &res)
	if err != nil {
		return err
	}
	// The same page by SMS, when the person has a number and SMS is set up.
	if w.withSideChannels(ctx) {
		w.sendSMS(ctx, staffID, step, title)
	}
	w.afterPage(ctx, staffID, step, kind, &res, delayed)
	return nil
}

// event appends an audit event to be written by the next record.
func (w *incident) event(ctx workflow.Context, action, actorType, actorID, from, to string, detail map[string]string) {
	w.st.Seq++
	w.dirty = append(w.dirty, activities.AuditEvent{
		Seq: w.st.Seq, Action: action, ActorType: actorType, ActorID: actorID,
		FromStatus: from, ToStatus: to, At: workflow.Now(ctx), Detail: detail,
	})
}

// record writes the projection and the pending audit events. The mutex keeps
// concurrent handlers' writes in order.
func (w *incident) record(ctx workflow.Context) error { return w.recordWith(ctx, true) }

// recordWith is record, as a local activity when local is set and the run
// uses local steps.
func (w *incident) recordWith(ctx workflow.Context, local bool) error {
	if err := w.recording.Lock(ctx); err != nil {
		return err
	}
	defer w.recording.Unlock()
	events := w.dirty
	w.dirty = nil
	w.recordQueued = false // this record carries whatever was queued
	row := w.row(ctx)
	rec := &activities.RecordInput{Row: row, Events: events}
	if w.useArmedSteps(ctx) {
		rec.Armed = w.armedStep(ctx)
	}
	if w.useLocalSteps(ctx) {
		var (
			res activities.RecordResult
			f   workflow.Future
		)
		if local {
			f = workflow.ExecuteLocalActivity(summarizedLocal(localDBCtx(ctx), "write the projection (seq "+strconv.Itoa(row.LastSeq)+")"), dbActivities.Record, rec)
		} else {
			f = workflow.ExecuteActivity(summarized(dbCtx(ctx), "write the projection (seq "+strconv.Itoa(row.LastSeq)+")"), dbActivities.Record, rec)
		}
		if err := f.Get(ctx, &res); err != nil {
			return err
		}
		if !res.Slack {
			return nil
		}
	} else {
		if err := workflow.ExecuteActivity(dbCtx(ctx), dbActivities.Record, rec).Get(ctx, nil); err != nil {
			return err
		}
		if !w.withSideChannels(ctx) {
			return nil
		}
	}
	// The incident's one Slack message follows every recorded change; a
	// late, older sync is ignored by its sequence number.
	w.side = append(w.side, workflow.ExecuteActivity(summarized(sideCtx(ctx), "sync the Slack message (seq "+strconv.Itoa(row.LastSeq)+")"), notifyActivities.SyncSlack, &activities.SlackSyncInput{
		IncidentMessage: slacknotify.IncidentMessage{
			IncidentID: row.ID, Status: row.Status, Severity: row.Severity, AlertType: row.AlertType,
			Room: row.Room, AlertCount: row.AlertCount, OpenedAt: row.OpenedAt,
		},
		Seq: row.LastSeq, AssigneeID: w.st.AssignedTo,
	}))
	return nil
}

// awaitSideEffects waits for Slack and SMS deliveries; their failures are
// recorded by the activities themselves and never fail the incident.
func (w *incident) awaitSideEffects(ctx workflow.Context) {
	for _, f := range w.side {
		_ = f.Get(ctx, nil)
	}
	w.side = nil
}

func (w *incident) row(ctx workflow.Context) activities.IncidentRow {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	var assigned *string
	if w.st.AssignedTo != "" {
		a := w.st.AssignedTo
		assigned = &a
	}
	unscoped := w.in.UnscopedKeyHash
	if unscoped == "" && w.in.Integration == "" {
		unscoped = w.in.DedupKeyHash // before scoping, the key hash was unscoped
	}
	return activities.IncidentRow{
		ID: w.st.IncidentID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		DedupKeyHash: w.in.DedupKeyHash, AlertType: w.st.AlertType, Severity: w.st.Severity,
		PatientID: w.in.PatientID, Room: w.in.Room, Source: w.in.Source, Integration: w.in.Integration,
		UnscopedKeyHash: unscoped, Status: w.st.Status,
		AssignedTo: assigned, AssignedRole: w.st.AssignedRole, AlertCount: max(w.st.AlertCount, 1),
		EscalationStep: w.st.EscalationStep, OpenedAt: w.st.OpenedAt, AssignedAt: opt(w.st.AssignedAt),
		FirstPagedAt: opt(w.st.FirstPagedAt), AcknowledgedAt: opt(w.st.AcknowledgedAt),
		InProgressAt: opt(w.st.InProgressAt), ResolvedAt: opt(w.st.ResolvedAt), ResolvedBy: w.st.ResolvedBy,
		ResolutionNotes: w.st.Resolution, LastAlertAt: w.st.LastAlertAt, LastSeq: w.st.Seq,
	}
}

func (w *incident) upsertSearchAttributes(ctx workflow.Context) error {
	workflow.SetCurrentDetails(ctx, w.details())
	// Runs with local steps skip an upsert that changes nothing (an
	// escalation keeps status and role): each costs the server a
	// visibility write.
	sa := [3]string{w.st.Status, w.st.AssignedRole, w.st.IncidentID}
	if w.useLocalSteps(ctx) {
		if w.upserted == sa {
			return nil
		}
		w.upserted = sa
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		VigilKindKey.ValueSet(KindIncident),
		IncidentStatusKey.ValueSet(w.st.Status),
		SeverityKey.ValueSet(w.st.Severity),
		AlertTypeKey.ValueSet(w.st.AlertType),
		AssignedRoleKey.ValueSet(w.st.AssignedRole),
		IncidentIDKey.ValueSet(w.st.IncidentID),
	)
}

// details are the run's current details in the Temporal Web UI: state,
// assignee, the next escalation and alert count; no patient data.
func (w *incident) details() string {
	parts := []string{w.st.Severity + " " + w.st.AlertType, w.st.Status}
	if w.st.AssignedTo != "" {
		parts = append(parts, "assigned "+w.st.AssignedTo+" ("+w.st.AssignedRole+")")
	}
	if w.st.Status == StatusAssigned && !w.st.NextPageDue.IsZero() {
		parts = append(parts, "escalation step "+strconv.Itoa(w.st.EscalationStep+1)+" due "+w.st.NextPageDue.UTC().Format("15:04:05")+" UTC")
	}
	if w.st.ResolvedBy != "" {
		parts = append(parts, "resolved by "+w.st.ResolvedBy)
	}
	parts = append(parts, strconv.Itoa(max(w.st.AlertCount, 1))+" alert(s)")
	return strings.Join(parts, " · ")
}

// maxHistoryLength continues a run as new well before Temporal's limits
// (50,000 events) even if the server has not suggested it yet.
const maxHistoryLength = 10_000

// historyLong reports whether Temporal suggests continuing the run as new
// or its history has reached maxHistoryLength.
func historyLong(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= maxHistoryLength
}

// continueAsNewDue reports whether a run that has handled done items
// (polls, observations) should continue as new: after testAfter items when
// a test sets it, else after maxPerRun items or once its history is long.
func continueAsNewDue(ctx workflow.Context, done, testAfter, maxPerRun int) bool {
	if testAfter > 0 {
		return done >= testAfter
	}
	return done >= maxPerRun || historyLong(ctx)
}

func (w *incident) shouldContinueAsNew(ctx workflow.Context) bool {
	if w.in.ContinueAsNewAfterEvents > 0 && w.st.Seq-w.runStartSeq >= w.in.ContinueAsNewAfterEvents {
		return true
	}
	return historyLong(ctx)
}

func (w *incident) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && w.recordsDone() }); err != nil {
		return err
	}
	// Drain source-resolved signals so none is lost across the new run.
	ch := workflow.GetSignalChannel(ctx, IncidentSignalSourceResolved)
	for {
		var sig SourceResolvedSignal
		if !ch.ReceiveAsync(&sig) {
			break
		}
		w.onSourceSignal(ctx, &sig)
	}
	if len(w.dirty) > 0 {
		if err := w.record(ctx); err != nil {
			return err
		}
	}
	w.awaitSideEffects(ctx)
	next := *w.in
	carry := w.st
	next.Carry = &carry
	return workflow.NewContinueAsNewError(ctx, Incident, &next)
}

func toIncidentPlan(p activities.Plan) IncidentPlan {
	plan := IncidentPlan{
		PolicyID:      p.PolicyID,
		Roles:         p.Roles,
		StartReminder: time.Duration(p.StartReminderSeconds) * time.Second,
		FailsafeRole:  p.FailsafeRole,
	}
	for _, s := range p.Steps {
		plan.Steps = append(plan.Steps, EscalationStep{Wait: time.Duration(s.WaitSeconds) * time.Second, Target: s.Target, Role: s.Role})
	}
	return plan
}

// dbCtx is for quick Postgres activities (a few statements each): an
// attempt lost with a crashed worker, or stuck, is abandoned after 5 s and
// retried with backoff (at most 10 s apart, so a database that comes back
// is used within seconds), so a crash costs seconds rather than a long
// timeout; the workflow keeps trying for up to an hour rather than losing
// the incident's trail.
func dbCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            dbRetryPolicy(),
	})
}

func dbRetryPolicy() *temporal.RetryPolicy {
	return doublingRetry(500*time.Millisecond, 10*time.Second, "UnknownAlertType", "NoPolicy", "BadPolicy")
}

// summarized gives the activities scheduled with ctx a summary for the
// Temporal Web UI (never patient data).
func summarized(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}

// summarizedLocal is summarized for local activities.
func summarizedLocal(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetLocalActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithLocalActivityOptions(ctx, o)
}

// localDBCtx is dbCtx for local activities: the same attempt timeout and
// retries, run by the worker inside the workflow task (a crashed worker's
// step is retried when its workflow task is).
func localDBCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            dbRetryPolicy(),
	})
}

// localPageCtx is for a page as a local activity: a pick (a few reads) and
// the page's transaction per attempt, retried as pages are, for as long as
// a page could still matter (30 minutes).
func localPageCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy:            pageRetryPolicy(),
	})
}

// sideCtx is for Slack and SMS: provider errors are classified by the
// activities (permanent ones are not retried; 429 honours Retry-After), and
// a delivery that cannot succeed within 10 minutes is abandoned. One attempt
// is one or two provider calls, abandoned after 10 s (a worker killed
// mid-call costs 10 s, not 30); retries are at most 15 s apart, so a
// provider that recovers gets the backlog within seconds.
func sideCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            doublingRetry(time.Second, 15*time.Second, activities.ErrTypeSlackPermanent),
	})
}

// pageCtx is for pages: each attempt is one Postgres transaction (the
// in-app page and the outbox rows), abandoned after 3 s so that a page whose
// worker died goes out within seconds of a worker being back (it once went
// out 31 s late, waiting out a 30 s timeout); retries are at most 10 s
// apart, and a page is retried for as long as it could still matter (30
// minutes).
func pageCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    3 * time.Second,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy:            pageRetryPolicy(),
	})
}

func pageRetryPolicy() *temporal.RetryPolicy {
	return doublingRetry(time.Second, 10*time.Second)
}
