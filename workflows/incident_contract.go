package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/actionproof"
	incidentstore "github.com/vigil-health/vigil/internal/incident"
)

// Incident lifecycle states: the incident store's, which the projection
// writes to incidents.status.
const (
	StatusOpen         = incidentstore.StatusOpen
	StatusAssigned     = incidentstore.StatusAssigned
	StatusAcknowledged = incidentstore.StatusAcknowledged
	StatusInProgress   = incidentstore.StatusInProgress
	StatusResolved     = incidentstore.StatusResolved
)

// Names of the incident workflow's updates, signal and query.
const (
	// IncidentUpdateAlert merges one or more alerts into the incident. The
	// API sends it with Update-With-Start, so the first alert of a dedup key
	// starts the workflow and later ones join it.
	IncidentUpdateAlert = "alert"
	// IncidentUpdateAcknowledge acknowledges: OPEN/ASSIGNED -> ACKNOWLEDGED.
	IncidentUpdateAcknowledge = "acknowledge"
	// IncidentUpdateStart starts work: ACKNOWLEDGED -> IN_PROGRESS.
	IncidentUpdateStart = "start"
	// IncidentUpdateResolve resolves with notes of at least 10 characters.
	IncidentUpdateResolve = "resolve"
	// IncidentUpdateClaim takes the incident and acknowledges it at once.
	IncidentUpdateClaim = "claim"
	// IncidentUpdateReassign hands the incident to someone else (charge only).
	IncidentUpdateReassign = "reassign"
	// IncidentUpdateNote adds a note.
	IncidentUpdateNote = "note"
	// IncidentSignalSourceResolved reports that the source says the
	// condition cleared; the incident resolves after a stable-OK wait unless
	// the alert fires again.
	IncidentSignalSourceResolved = "source-resolved"
	// IncidentSignalAcknowledge, IncidentSignalResolve and IncidentSignalNote
	// are the operator signals: an operator acts on an incident from the
	// Temporal Web UI or CLI with an OperatorSignal payload, recorded as
	// operator:<name>, never as a staff member. The state rules of the
	// staff transitions apply; a refused signal is recorded in the
	// incident's timeline (OPERATOR_SIGNAL_REFUSED) with its reason.
	IncidentSignalAcknowledge = "acknowledge"
	IncidentSignalResolve     = "resolve"
	IncidentSignalNote        = "note"
	// IncidentQueryState returns the IncidentState.
	IncidentQueryState = "state"
)

// Access levels of staff acting on incidents (from their token, never from a
// request body).
const (
	AccessStaff  = "staff"
	AccessCharge = "charge"
	AccessAdmin  = "admin"
)

// DedupKeyHash is the pseudonymous form of a dedup key (which may hold a
// patient id): it keys the workflow ID and the open-incident index, so no
// personal data reaches workflow IDs or search attributes.
func DedupKeyHash(dedupKey string) string {
	sum := sha256.Sum256([]byte(dedupKey))
	return hex.EncodeToString(sum[:16])
}

// IntegrationStaff is the integration scope of alerts raised by hand with a
// staff token: every staff member shares it, so the same alert from two
// nurses merges. Staff never acknowledge or resolve as a source; they act
// through the staff routes.
const IntegrationStaff = "staff"

// IntegrationAPIKey is the integration scope of an alert-source API key.
func IntegrationAPIKey(apiKeyID int64) string { return "apikey:" + strconv.FormatInt(apiKeyID, 10) }

// ScopedDedupKeyHash is the dedup key hash of an integration: dedup keys are
// scoped to the integration that sends them (as PagerDuty scopes them to a
// routing key), so one integration can neither merge into nor acknowledge or
// resolve another's incident by guessing its key.
func ScopedDedupKeyHash(integration, dedupKey string) string {
	return DedupKeyHash(integration + "\x00" + dedupKey)
}

// IdempotencyKeyHash is the pseudonymous form of an alert's idempotency key
// (an Idempotency-Key header, an alert_id, or an Alertmanager alert's
// fingerprint and startsAt), scoped to the sending integration. Only the
// hash reaches the workflow: a key may hold patient data.
func IdempotencyKeyHash(integration, key string) string {
	return DedupKeyHash("idempotency\x00" + integration + "\x00" + key)
}

// MaxRememberedAlertKeys bounds the idempotency keys an incident remembers
// (the latest ones); continue-as-new carries them.
const MaxRememberedAlertKeys = 1000

// IncidentWorkflowID returns the workflow ID of the incident for a dedup key
// hash (the API uses ScopedDedupKeyHash). One dedup key has at most one open incident; after it resolves, the
// next alert starts a new run, with a new incident id, under the same ID.
func IncidentWorkflowID(dedupKeyHash string) string {
	return "incident:" + dedupKeyHash
}

// AlertWithStart builds the Update-With-Start that delivers alerts: the
// incident workflow of the dedup key is started if none is open
// (USE_EXISTING joins an open run; ALLOW_DUPLICATE lets a resolved key open a
// new incident), with its typed search attributes, and the alert update is
// sent to it. in is used only when a new run starts. The call returns once
// the workflow has accepted the update (it is then in the history, durable);
// the handle's Get waits for the AlertResult.
func AlertWithStart(c client.Client, taskQueue string, in *IncidentInput, u *AlertUpdate) client.UpdateWithStartWorkflowOptions {
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       IncidentWorkflowID(in.DedupKeyHash),
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			VigilKindKey.ValueSet(KindIncident),
			IncidentStatusKey.ValueSet(StatusOpen),
			SeverityKey.ValueSet(in.Severity),
			AlertTypeKey.ValueSet(in.AlertType),
			IncidentIDKey.ValueSet(in.IncidentID),
		),
		StaticSummary: IncidentSummary(in.Severity, in.AlertType, in.IncidentID),
		StaticDetails: "Incident " + in.IncidentID + ": " + in.Severity + " " + in.AlertType + " from " + in.Source +
			". Patient data in this run is encrypted; decode it in the Web UI as a signed-in Vigil admin. " +
			"Operators act with the signals acknowledge, resolve and note ({\"operator\": \"<name>\", \"notes\": \"...\"}).",
	}, Incident, in)
	return client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   IncidentUpdateAlert,
			Args:         []any{u},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	}
}

// IncidentInput starts an incident workflow.
type IncidentInput struct {
	// IncidentID is the new incident's UUID, chosen by the API.
	IncidentID   string
	DedupKeyHash string
	AlertType    string
	Severity     string
	PatientID    string
	Room         string
	Source       string
	// Integration is the scope of the integration that fed the incident
	// (IntegrationAPIKey or IntegrationStaff): only it may acknowledge or
	// resolve the incident as a source. Empty on runs started before
	// integrations were scoped; those accept any source, as they did.
	Integration string
	// UnscopedKeyHash is DedupKeyHash of the raw dedup key, projected so an
	// attempt by another integration on this incident can be audited.
	UnscopedKeyHash string
	// OpenedAt is when the first alert was accepted.
	OpenedAt time.Time
	// StableOKWait is how long a source must keep reporting OK before the
	// incident auto-resolves. Zero means DefaultStableOKWait.
	StableOKWait time.Duration
	// ContinueAsNewAfterEvents continues the run as new after this many
	// audit events (a test hook); zero leaves the decision to the server's
	// suggestion and a 10,000-event cap.
	ContinueAsNewAfterEvents int
	// Carry is the state carried over by continue-as-new; nil on the first run.
	Carry *IncidentState
}

// DefaultStableOKWait is the auto-resolve wait when IncidentInput sets none.
const DefaultStableOKWait = 2 * time.Minute

// AccessSource marks an acknowledgement relayed by an alert source (a
// PagerDuty "acknowledge" event): it acknowledges without changing the
// assignee.
const AccessSource = "source"

// Actor is who performs a transition, taken from the caller's token or API
// key, never from a request body.
type Actor struct {
	StaffID string
	Access  string
	// Source names the alert source when Access is AccessSource.
	Source string
	// Integration is the scope of that source (IncidentInput.Integration);
	// an incident with an owner refuses a source acknowledgement from any
	// other scope, and from IntegrationStaff always.
	Integration string
}

// SourceResolvedSignal is the payload of IncidentSignalSourceResolved. An
// incident with an owner ignores the signal from any other integration (and
// from IntegrationStaff) and records the refusal in its timeline.
type SourceResolvedSignal struct {
	// Integration is the sending integration's scope.
	Integration string
	// Source names the sender for the timeline (e.g. "apikey:<name>").
	Source string
}

// AlertUpdate merges alerts into an incident.
type AlertUpdate struct {
	// Count is how many raw alerts this update carries (the API coalesces a
	// storm into few updates).
	Count      int
	Value      string
	ObservedAt time.Time
	// IdempotencyKeys are the idempotency keys (IdempotencyKeyHash) of the
	// alerts carried, in order, "" for an alert without one; at most Count
	// (older senders send none). An alert whose key the incident has already
	// counted, earlier in this update included, is not counted again.
	IdempotencyKeys []string
}

// AlertResult answers an AlertUpdate.
type AlertResult struct {
	IncidentID string
	// Created is true when this update opened the incident.
	Created    bool
	AlertCount int
	Status     string
	// Duplicates are the positions, in AlertUpdate.IdempotencyKeys, of the
	// alerts not counted because the incident had already counted their key.
	Duplicates []int
}

// TransitionRequest asks for a state change.
type TransitionRequest struct {
	// IncidentID guards against acting on a later incident of the same dedup
	// key: it must be the run's incident.
	IncidentID string
	Actor      Actor
	// Notes are the resolution notes (resolve) or the note text (note).
	Notes string
	// ToStaffID is the new assignee (reassign).
	ToStaffID string
	// IssuedAt is when the API authorised the request; a proof older than
	// TransitionProofMaxAge is refused.
	IssuedAt time.Time
	// Proof is the API's HMAC over the request, the run's workflow id, the
	// update's name and id and IssuedAt (see TransitionProofMessage): a
	// staff transition without it, sent from the Temporal Web UI or CLI, is
	// refused, and operators use the operator signals instead.
	Proof string
}

// TransitionProofMaxAge bounds how long a signed transition may take to
// reach its workflow.
const TransitionProofMaxAge = 10 * time.Minute

// TransitionProofMessage is what the proof of a transition covers: every
// field of the request except the proof, the workflow id, and the update's
// name and id (Temporal runs an update id once, so a proof cannot be
// replayed as a second update).
func TransitionProofMessage(workflowID, update, updateID string, r *TransitionRequest) []byte {
	return actionproof.Message("vigil-incident-transition", workflowID, update, updateID,
		r.IncidentID, r.Actor.StaffID, r.Actor.Access, r.Actor.Source, r.Actor.Integration,
		r.Notes, r.ToStaffID, r.IssuedAt.UTC().Format(time.RFC3339Nano))
}

// TransitionResult answers a state change.
type TransitionResult struct {
	IncidentID     string
	PreviousStatus string
	Status         string
	AssignedTo     string
	At             time.Time
}

// EscalationStep is one step of an escalation policy: wait this long for an
// acknowledgement, then page the target.
type EscalationStep struct {
	Wait time.Duration
	// Target is "next_in_role", "role" (with Role) or "failsafe".
	Target string
	Role   string
}

// Escalation targets.
const (
	TargetNextInRole = "next_in_role"
	TargetRole       = "role"
	TargetFailsafe   = "failsafe"
)

// IncidentPlan is the policy snapshot an incident follows: the roles to try,
// the escalation steps and the start reminder. It is loaded once and kept for
// the incident's life; people are resolved when each step fires.
type IncidentPlan struct {
	PolicyID      string
	Roles         []string
	Steps         []EscalationStep
	StartReminder time.Duration
	FailsafeRole  string
}

// IncidentState is the incident as the workflow knows it; the state query
// returns it and continue-as-new carries it.
type IncidentState struct {
	IncidentID     string
	AlertType      string
	Severity       string
	Status         string
	AssignedTo     string
	AssignedRole   string
	AlertCount     int
	OpenedAt       time.Time
	LastAlertAt    time.Time
	AssignedAt     time.Time
	FirstPagedAt   time.Time
	AcknowledgedAt time.Time
	InProgressAt   time.Time
	ResolvedAt     time.Time
	ResolvedBy     string
	Resolution     string
	Plan           IncidentPlan
	// Responders are everyone paged so far; any of them may acknowledge.
	Responders []string
	// EscalationStep is the index of the next step to fire.
	EscalationStep int
	// NextPageDue is when the next escalation step or reminder is due.
	NextPageDue time.Time
	// LastPageAt is when the latest page went out.
	LastPageAt time.Time
	// Reminders counts start reminders sent since acknowledgement.
	Reminders int
	// Reassignments counts reassignments (it labels their pages).
	Reassignments int
	// AlertSeen is set by the first alert update, which opened the incident.
	AlertSeen bool
	// FailsafePaged is set once nobody was on call and the failsafe role was
	// paged for the unassigned incident.
	FailsafePaged bool
	// SourceOKSince is when the source last reported the condition cleared;
	// zero when it has not (or fired again since).
	SourceOKSince time.Time
	// Seq numbers the audit events.
	Seq int
	// AlertKeys are the idempotency keys (IdempotencyKeyHash) of the alerts
	// counted, the latest MaxRememberedAlertKeys, oldest first.
	AlertKeys []string
}

// TransitionUpdate is the UpdateWorkflow options of a staff transition that
// Vigil's API authorised: the request is stamped and signed with keys
// (updateID "" gets a random one), and the call waits for the outcome.
func TransitionUpdate(keys *actionproof.Keyring, workflowID, update, updateID string, req *TransitionRequest) client.UpdateWorkflowOptions {
	if updateID == "" {
		updateID = uuid.NewString()
	}
	SignTransition(keys, workflowID, update, updateID, time.Now(), req)
	return client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateID: updateID, UpdateName: update, Args: []any{req},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
}

// SignTransition stamps req as issued at and signs it for the update
// (update, updateID) of workflowID.
func SignTransition(keys *actionproof.Keyring, workflowID, update, updateID string, at time.Time, req *TransitionRequest) {
	req.IssuedAt = at.UTC()
	req.Proof = keys.Sign(TransitionProofMessage(workflowID, update, updateID, req))
}

// IncidentSummary is the one-line summary of an incident's run in the
// Temporal Web UI: severity, alert type and the REST id, never patient data.
func IncidentSummary(severity, alertType, incidentID string) string {
	return severity + " · " + alertType + " · incident " + incidentID
}
