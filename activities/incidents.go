package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/reference"
)

// Incidents holds the activities of the incident workflow: loading its plan,
// projecting its state to Postgres, picking on-call staff and paging them.
type Incidents struct {
	// Store is the incident store; Reference reads alert types and
	// escalation policies.
	Store     *incident.Store
	Reference *reference.Store
	Schedule  *oncall.Schedule
	// Metrics, when set, counts escalations and pages and observes MTTA,
	// MTTR and time to assign from the workflow's own timestamps.
	Metrics *metrics.IncidentMetrics
	// SlackEnabled and SMSEnabled say whether those channels are configured;
	// the workflow schedules no delivery for a channel that is off.
	SlackEnabled bool
	SMSEnabled   bool
}

// LoadPlanInput names the alert type whose plan to load.
type LoadPlanInput struct {
	AlertType string
	Severity  string
}

// PlanStep is one escalation step as loaded from Postgres.
type PlanStep struct {
	WaitSeconds int    `json:"wait_seconds"`
	Target      string `json:"target"`
	Role        string `json:"role,omitempty"`
}

// Plan is an alert type's roles and escalation policy.
type Plan struct {
	PolicyID             string
	Roles                []string
	Steps                []PlanStep
	StartReminderSeconds int
	FailsafeRole         string
}

// LoadPlan reads the alert type's ordered roles and its escalation policy:
// the alert type's own policy when one exists, else its severity's.
func (a *Incidents) LoadPlan(ctx context.Context, in *LoadPlanInput) (*Plan, error) {
	p, err := a.Reference.AlertPlan(ctx, in.AlertType)
	if errors.Is(err, reference.ErrUnknownAlertType) {
		return nil, temporal.NewNonRetryableApplicationError("unknown alert type "+in.AlertType, "UnknownAlertType", err)
	}
	if errors.Is(err, reference.ErrNoPolicy) {
		return nil, temporal.NewNonRetryableApplicationError("no escalation policy for "+in.AlertType, "NoPolicy", err)
	}
	if err != nil {
		return nil, err
	}
	plan := &Plan{PolicyID: p.PolicyID, Roles: p.Roles, StartReminderSeconds: p.StartReminderSeconds}
	if err := json.Unmarshal(p.Steps, &plan.Steps); err != nil {
		return nil, temporal.NewNonRetryableApplicationError("escalation policy "+p.PolicyID+" is malformed", "BadPolicy", err)
	}
	if plan.FailsafeRole, err = a.Schedule.FailsafeRole(ctx); err != nil {
		return nil, fmt.Errorf("load failsafe role: %w", err)
	}
	return plan, nil
}

// IncidentRow is the incident's projection, written on every change.
type IncidentRow = incident.Row

// AuditEvent is one entry of an incident's audit trail.
type AuditEvent = incident.AuditEvent

// RecordInput is a projection and the audit events that led to it.
type RecordInput struct {
	Row    IncidentRow
	Events []AuditEvent
	// Armed is the escalation step the incident now waits for, written in
	// the projection's transaction for the escalation dispatcher; nil
	// cancels any armed step (the incident is no longer waiting).
	Armed *ArmedStep `json:",omitempty"`
}

// ArmedStep is an escalation step due at Due: the dispatcher runs Input
// through PageStep then, as the workflow's timer does later.
type ArmedStep struct {
	Due   time.Time
	Input PageStepInput
}

// RecordResult says what the workflow should do after a record.
type RecordResult struct {
	// Slack is set when Slack is configured: the incident's Slack message
	// follows the recorded change.
	Slack bool
}

// Record upserts the incident row, unless a newer projection is already
// there, and inserts the audit events; replays of the same input are no-ops.
func (a *Incidents) Record(ctx context.Context, in *RecordInput) (*RecordResult, error) {
	if err := a.record(ctx, in); err != nil {
		return nil, err
	}
	return &RecordResult{Slack: a.SlackEnabled}, nil
}

func (a *Incidents) record(ctx context.Context, in *RecordInput) error {
	var arm *incident.ArmedStep
	if in.Armed != nil {
		input, err := json.Marshal(in.Armed.Input)
		if err != nil {
			return temporal.NewNonRetryableApplicationError("encode the armed step", "BadArmedStep", err)
		}
		arm = &incident.ArmedStep{Step: in.Armed.Input.Page.Step, Due: in.Armed.Due, Input: input}
	}
	if err := a.store().Record(ctx, in.Row, in.Events, arm); err != nil {
		return classifySQL(err)
	}
	a.observe(in)
	return nil
}

// store is the incident store over the activities' database.
func (a *Incidents) store() *incident.Store { return a.Store }

// observe exports the recorded events as metrics. The times come from the
// workflow's state, so a restarted worker loses nothing; a retried Record
// may observe twice, which histograms tolerate.
func (a *Incidents) observe(in *RecordInput) {
	if a.Metrics == nil {
		return
	}
	r := in.Row
	for _, ev := range in.Events {
		switch ev.Action {
		case "ESCALATED":
			a.Metrics.Escalated()
		case "RESOLVED", "AUTO_RESOLVED":
			a.Metrics.ObserveResolved(r.Severity, r.OpenedAt, deref(r.AssignedAt), deref(r.AcknowledgedAt), deref(r.ResolvedAt))
		}
	}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// PickInput asks for an on-call person.
type PickInput struct {
	Roles   []string
	At      time.Time
	Exclude []string
	// FailsafeOnly picks from the failsafe role only.
	FailsafeOnly bool
}

// PickResult is the person picked, or Found=false when nobody is on call.
type PickResult struct {
	Found      bool
	StaffID    string
	Role       string
	Fallback   bool
	InProgress int
	Open       int
	Candidates int
	Reason     string
}

// Pick chooses the least-busy on-call person for the first role that has
// anyone; nobody on call is an answer (Found=false), not an error.
func (a *Incidents) Pick(ctx context.Context, in *PickInput) (*PickResult, error) {
	var (
		p   *oncall.Pick
		err error
	)
	if in.FailsafeOnly {
		p, err = a.Schedule.PickFailsafe(ctx, in.At, in.Exclude)
	} else {
		p, err = a.Schedule.PickAssignee(ctx, in.Roles, in.At, in.Exclude)
	}
	if errors.Is(err, oncall.ErrNobodyOnCall) {
		return &PickResult{Found: false, Reason: "nobody on call for " + strings.Join(in.Roles, ", ")}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pick on-call staff: %w", err)
	}
	return &PickResult{
		Found:      true,
		StaffID:    p.ID,
		Role:       p.Role,
		Fallback:   p.Fallback,
		InProgress: p.Load.InProgress,
		Open:       p.Load.Open,
		Candidates: p.Candidates,
		Reason:     p.Reason(),
	}, nil
}

// PageInput is one page to one person, as the incident store's outbox
// takes it.
type PageInput = incident.InAppPage

// PageResult says whether the page reached at least one channel.
type PageResult struct {
	Delivered   bool
	DeliveredAt time.Time
}

// Page delivers a page through the outbox. The in-app channel stores the
// notification, which the SSE stream pushes to the person at once.
func (a *Incidents) Page(ctx context.Context, in *PageInput) (*PageResult, error) {
	at, sentBefore, err := a.store().PageInApp(ctx, *in)
	if err != nil {
		return nil, err
	}
	a.observePage(*in, incident.PageSent{At: at, Before: sentBefore})
	return &PageResult{Delivered: true, DeliveredAt: at}, nil
}

// observePage counts a page sent (not one an earlier attempt sent) and how
// late it went out.
func (a *Incidents) observePage(p incident.InAppPage, s incident.PageSent) {
	if s.Before || a.Metrics == nil {
		return
	}
	a.Metrics.Notified("inapp", "sent")
	if !p.Due.IsZero() {
		a.Metrics.ObserveLateness(s.At.Sub(p.Due))
	}
}

// PickChoice is one way to find the person a page goes to.
type PickChoice struct {
	PickInput
	// SameRoleOnly refuses a person from another role (a fallback pick):
	// "the next person in the role" must be in that role.
	SameRoleOnly bool
}

// PageStepInput is one page to whoever the first choice that finds someone
// picks. Page.Recipient is left empty: it is the pick.
type PageStepInput struct {
	Choices []PickChoice
	Page    PageInput
	// PagedAs, when set, names the step the escalation dispatcher may have
	// paged in this one's place (a delayed page's overdue step): if it did,
	// this step is that page, and nobody is paged again.
	PagedAs string `json:",omitempty"`
}

// PageStepResult is who was picked (Found=false: nobody, and nothing was
// sent) and the page sent to them.
type PageStepResult struct {
	Pick PickResult
	Page PageResult
	// SMS is set when SMS is configured: the workflow sends the page by SMS
	// as well. When it is off, the outbox records the SMS as skipped.
	SMS bool
}

// smsNotConfigured is the outbox reason for an SMS never scheduled.
const smsNotConfigured = "SMS is not configured"

// PageStep picks the person a page goes to and pages them, in one activity
// (run as a local activity: a step costs the workflow one task, so a page
// goes out as soon as its timer fires). It is idempotent per (incident,
// step): a re-run, after a workflow task was lost with its worker, pages
// whoever the first run paged rather than picking again.
func (a *Incidents) PageStep(ctx context.Context, in *PageStepInput) (*PageStepResult, error) {
	st, err := a.pickStep(ctx, in)
	if err != nil {
		return nil, err
	}
	if st.page != nil {
		res, err := a.Page(ctx, st.page)
		if err != nil {
			return nil, err
		}
		st.out.Page = *res
	}
	return st.out, nil
}

// pickedStep is a page step whose person is picked: its result so far, and
// the page to send (nil: nobody was found).
type pickedStep struct {
	out  *PageStepResult
	page *PageInput
}

// pickStep is the first half of PageStep (the escalation dispatcher runs
// it ahead of the page): whom the step pages, and how.
func (a *Incidents) pickStep(ctx context.Context, in *PageStepInput) (*pickedStep, error) {
	page := in.Page
	pick, err := a.pickedAs(ctx, in)
	if err != nil {
		return nil, err
	}
	if pick != nil {
		page.Step = in.PagedAs
	} else if pick, err = a.pickForStep(ctx, in); err != nil {
		return nil, err
	}
	st := &pickedStep{out: &PageStepResult{Pick: *pick, SMS: a.SMSEnabled}}
	if !pick.Found {
		return st, nil
	}
	page.Recipient = pick.StaffID
	if !a.SMSEnabled {
		page.SMSSkipped = smsNotConfigured
	}
	st.page = &page
	return st, nil
}

// pickedAs is the pick of in.PagedAs when that step was picked (by the
// escalation dispatcher), else nil.
func (a *Incidents) pickedAs(ctx context.Context, in *PageStepInput) (*PickResult, error) {
	if in.PagedAs == "" {
		return nil, nil
	}
	p, found, err := a.store().StepPicked(ctx, in.Page.IncidentID, in.PagedAs)
	switch {
	case err != nil:
		return nil, classifySQL(err)
	case !found:
		return nil, nil
	}
	return stepPickResult(p), nil
}

// pickForStep is the person a step pages: whoever an earlier run of the
// same step picked (the escalation dispatcher's run, then the workflow's,
// or a retry), else the first choice that finds someone, recorded as the
// step's pick unless a concurrent run recorded one first.
func (a *Incidents) pickForStep(ctx context.Context, in *PageStepInput) (*PickResult, error) {
	if in.Page.Recipient != "" {
		return &PickResult{Found: true, StaffID: in.Page.Recipient}, nil
	}
	if p, found, err := a.store().StepPicked(ctx, in.Page.IncidentID, in.Page.Step); err != nil {
		return nil, classifySQL(err)
	} else if found {
		return stepPickResult(p), nil
	}
	// Pages from before picks were recorded: the outbox has the recipient.
	prev, found, err := a.store().StepRecipient(ctx, in.Page.IncidentID, in.Page.Step)
	if err != nil {
		return nil, classifySQL(err)
	}
	if found {
		return a.repick(ctx, in.Choices, prev)
	}
	var reasons []string
	for i := range in.Choices {
		c := &in.Choices[i]
		p, err := a.Pick(ctx, &c.PickInput)
		if err != nil {
			return nil, err
		}
		if p.Found && !(c.SameRoleOnly && p.Fallback) {
			won, err := a.store().ClaimStepPick(ctx, in.Page.IncidentID, in.Page.Step, incident.StepPick{
				Recipient: p.StaffID, Role: p.Role, Fallback: p.Fallback, Reason: p.Reason})
			if err != nil {
				return nil, classifySQL(err)
			}
			if won.Recipient != p.StaffID {
				return stepPickResult(won), nil
			}
			return p, nil
		}
		if p.Reason != "" {
			reasons = append(reasons, p.Reason)
		}
	}
	return &PickResult{Found: false, Reason: strings.Join(reasons, "; ")}, nil
}

// stepPickResult is a recorded pick as the step's result: the same as the
// first run's.
func stepPickResult(p incident.StepPick) *PickResult {
	return &PickResult{Found: true, StaffID: p.Recipient, Role: p.Role, Fallback: p.Fallback, Reason: p.Reason}
}

// repick describes the person an earlier run of the step paged, with the
// role they are on call for among the choices' roles (empty when they are
// no longer on call).
func (a *Incidents) repick(ctx context.Context, choices []PickChoice, staffID string) (*PickResult, error) {
	res := &PickResult{Found: true, StaffID: staffID, Reason: "paged for this step by an earlier attempt"}
	for _, c := range choices {
		roles := c.Roles
		if c.FailsafeOnly {
			role, err := a.Schedule.FailsafeRole(ctx)
			if err != nil {
				return nil, fmt.Errorf("failsafe role: %w", err)
			}
			roles = []string{role}
		}
		for _, role := range roles {
			people, err := a.Schedule.OnCall(ctx, role, c.At)
			if err != nil {
				return nil, fmt.Errorf("on call for %s: %w", role, err)
			}
			if slices.ContainsFunc(people, func(p oncall.Person) bool { return p.ID == staffID }) {
				res.Role = role
				return res, nil
			}
		}
	}
	return res, nil
}
