package reference

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/database"
)

// Escalation targets, as stored in a policy's steps.
const (
	// TargetNextInRole pages the next person on call in the alert's roles.
	TargetNextInRole = "next_in_role"
	// TargetRole pages whoever is on call for the step's role.
	TargetRole = "role"
	// TargetFailsafe pages the failsafe role (the charge nurse).
	TargetFailsafe = "failsafe"
)

// Escalation policy bounds.
const (
	// MinWaitSeconds is the shortest wait of a step.
	MinWaitSeconds = 30
	// MaxWaitSeconds is the longest wait of a step (a day).
	MaxWaitSeconds = 86400
	// MaxSteps is the most steps a policy may have.
	MaxSteps = 10
	// MinStartReminderSeconds is the shortest start reminder.
	MinStartReminderSeconds = 60
	// MaxStartReminderSeconds is the longest start reminder (a day).
	MaxStartReminderSeconds = 86400
	// DefaultStartReminderSeconds is used when a PUT leaves it out.
	DefaultStartReminderSeconds = 600
)

// Step is one escalation step: wait WaitSeconds for an acknowledgement,
// then page Target.
type Step struct {
	// WaitSeconds is how long to wait, MinWaitSeconds..MaxWaitSeconds.
	WaitSeconds int `json:"wait_seconds"`
	// Target is next_in_role, role or failsafe.
	Target string `json:"target"`
	// Role is the role paged; set exactly when Target is role.
	Role string `json:"role,omitempty"`
}

// Policy is an escalation policy: the default of a severity, or the
// override of one alert type.
type Policy struct {
	// ID is "severity:<SEVERITY>" or "alert_type:<TYPE>".
	ID string `json:"id"`
	// Severity is set for a severity's default.
	Severity string `json:"severity,omitempty"`
	// AlertType is set for an alert type's override.
	AlertType string `json:"alert_type,omitempty"`
	// Steps are the steps, in order; the last targets the failsafe.
	Steps []Step `json:"steps"`
	// StartReminderSeconds re-pages the assignee of an acknowledged
	// incident not started in that time.
	StartReminderSeconds int `json:"start_reminder_seconds"`
	// UpdatedAt is when the policy was last written.
	UpdatedAt time.Time `json:"updated_at"`
}

// policyRow is a policy as stored.
type policyRow struct {
	ID                   string         `db:"id"`
	Severity             sql.NullString `db:"severity"`
	AlertType            sql.NullString `db:"alert_type"`
	Steps                []byte         `db:"steps"`
	StartReminderSeconds int            `db:"start_reminder_seconds"`
	UpdatedAt            time.Time      `db:"updated_at"`
	Created              bool           `db:"created"`
}

const policyColumns = `id, severity, alert_type, steps, start_reminder_seconds, updated_at`

func (r policyRow) policy() (Policy, error) {
	p := Policy{
		ID: r.ID, Severity: r.Severity.String, AlertType: r.AlertType.String,
		StartReminderSeconds: r.StartReminderSeconds, UpdatedAt: r.UpdatedAt,
	}
	if err := json.Unmarshal(r.Steps, &p.Steps); err != nil {
		return Policy{}, fmt.Errorf("policy %s has malformed steps: %w", r.ID, err)
	}
	if p.Steps == nil {
		p.Steps = []Step{}
	}
	return p, nil
}

// PolicyID is a parsed escalation policy id: exactly one of Severity and
// AlertType is set.
type PolicyID struct {
	// Severity is set for "severity:<SEVERITY>".
	Severity string
	// AlertType is set for "alert_type:<TYPE>".
	AlertType string
}

// String returns the id's text form.
func (id PolicyID) String() string {
	if id.Severity != "" {
		return "severity:" + id.Severity
	}
	return "alert_type:" + id.AlertType
}

// ParsePolicyID parses "severity:<SEVERITY>" or "alert_type:<TYPE>",
// returning a *FieldError naming "id" otherwise.
func ParsePolicyID(s string) (PolicyID, error) {
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "severity" && ValidSeverity(name):
		return PolicyID{Severity: name}, nil
	case ok && kind == "alert_type" && ValidAlertTypeName(name):
		return PolicyID{AlertType: name}, nil
	}
	return PolicyID{}, invalid("id", "must be severity:<CRITICAL|HIGH|MEDIUM|LOW> or alert_type:<ALERT_TYPE>")
}

// PolicyInput is the body of a create-or-replace of a policy.
type PolicyInput struct {
	// Steps are 1..MaxSteps steps; the last must target failsafe.
	Steps []Step `json:"steps"`
	// StartReminderSeconds defaults to DefaultStartReminderSeconds.
	StartReminderSeconds *int `json:"start_reminder_seconds"`
}

// Validate checks everything that does not need the database and fills the
// default start reminder. Fields are named like "steps[1].wait_seconds".
func (in *PolicyInput) Validate() error {
	if in.StartReminderSeconds == nil {
		d := DefaultStartReminderSeconds
		in.StartReminderSeconds = &d
	}
	switch n := len(in.Steps); {
	case n == 0:
		return invalid("steps", "must list at least one step")
	case n > MaxSteps:
		return invalid("steps", "must list at most %d steps", MaxSteps)
	}
	for i, s := range in.Steps {
		field := fmt.Sprintf("steps[%d].", i)
		if s.WaitSeconds < MinWaitSeconds || s.WaitSeconds > MaxWaitSeconds {
			return invalid(field+"wait_seconds", "must be from %d to %d seconds", MinWaitSeconds, MaxWaitSeconds)
		}
		switch s.Target {
		case TargetRole:
			if err := checkRole(field+"role", s.Role); err != nil {
				return err
			}
		case TargetNextInRole, TargetFailsafe:
			if s.Role != "" {
				return invalid(field+"role", "is only allowed when target is role")
			}
		default:
			return invalid(field+"target", "must be next_in_role, role or failsafe")
		}
	}
	if in.Steps[len(in.Steps)-1].Target != TargetFailsafe {
		return invalid("steps", "the last step must target failsafe: every escalation ends at the failsafe")
	}
	if r := *in.StartReminderSeconds; r < MinStartReminderSeconds || r > MaxStartReminderSeconds {
		return invalid("start_reminder_seconds", "must be from %d to %d seconds", MinStartReminderSeconds, MaxStartReminderSeconds)
	}
	return nil
}

// ListPolicies returns a page of policies, ordered by id.
func (st *Store) ListPolicies(ctx context.Context, p Page) (List[Policy], error) {
	var rows []policyRow
	if err := st.DB.SelectContext(ctx, &rows, `
		SELECT `+policyColumns+`, false AS created FROM escalation_policies
		ORDER BY id LIMIT $1 OFFSET $2`, p.Limit+1, p.Offset); err != nil {
		return List[Policy]{}, fmt.Errorf("list escalation policies: %w", err)
	}
	policies := make([]Policy, 0, len(rows))
	for _, r := range rows {
		pol, err := r.policy()
		if err != nil {
			return List[Policy]{}, err
		}
		policies = append(policies, pol)
	}
	return newList(policies, p), nil
}

// GetPolicy returns one policy, or ErrNotFound.
func (st *Store) GetPolicy(ctx context.Context, id PolicyID) (Policy, error) {
	r, err := database.Get[policyRow](ctx, st.DB, fmt.Errorf("escalation policy %s: %w", id, ErrNotFound), "get escalation policy "+id.String(),
		`SELECT `+policyColumns+`, false AS created FROM escalation_policies WHERE id = $1`, id.String())
	if err != nil {
		return Policy{}, err
	}
	return r.policy()
}

// PutPolicy creates or replaces policy id and reports whether it was
// created. Step roles must exist (*FieldError "steps[i].role"), and so must
// the alert type of an alert_type: id (*FieldError "id").
func (st *Store) PutPolicy(ctx context.Context, id PolicyID, in PolicyInput) (Policy, bool, error) {
	if err := in.Validate(); err != nil {
		return Policy{}, false, err
	}
	steps, err := json.Marshal(in.Steps)
	if err != nil {
		return Policy{}, false, fmt.Errorf("encode steps: %w", err)
	}
	var r policyRow
	err = st.inTx(ctx, func(tx *sqlx.Tx) error {
		for i, s := range in.Steps {
			if s.Target != TargetRole {
				continue
			}
			missing, _, err := unknownRole(ctx, tx, []string{s.Role})
			if err != nil {
				return err
			}
			if missing != "" {
				return invalid(fmt.Sprintf("steps[%d].role", i), "unknown role %s", missing)
			}
		}
		if id.AlertType != "" {
			var ok bool
			if err := tx.GetContext(ctx, &ok, `
				SELECT EXISTS (SELECT 1 FROM alert_types WHERE alert_type = $1)`, id.AlertType); err != nil {
				return fmt.Errorf("look up alert type %s: %w", id.AlertType, err)
			}
			if !ok {
				return invalid("id", "unknown alert type %s", id.AlertType)
			}
		}
		err := tx.GetContext(ctx, &r, `
			INSERT INTO escalation_policies (id, severity, alert_type, steps, start_reminder_seconds, updated_at)
			VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4::jsonb, $5, now())
			ON CONFLICT (id) DO UPDATE SET
				steps = EXCLUDED.steps,
				start_reminder_seconds = EXCLUDED.start_reminder_seconds,
				updated_at = now()
			RETURNING `+policyColumns+`, (xmax = 0) AS created`,
			id.String(), id.Severity, id.AlertType, string(steps), *in.StartReminderSeconds)
		return mapDBError("put escalation policy "+id.String(), err)
	})
	if err != nil {
		return Policy{}, false, err
	}
	p, err := r.policy()
	return p, r.Created, err
}

// DeletePolicy deletes an alert type's policy, so that its severity's
// default applies again. A severity's default cannot be deleted
// (*ConflictError "id"); an unknown id is ErrNotFound.
func (st *Store) DeletePolicy(ctx context.Context, id PolicyID) error {
	if id.Severity != "" {
		return conflict("id", "a severity's default policy cannot be deleted; replace it instead")
	}
	res, err := st.DB.ExecContext(ctx, `DELETE FROM escalation_policies WHERE id = $1`, id.String())
	if err != nil {
		return mapDeleteError("delete escalation policy "+id.String(), "id", err)
	}
	return database.ExpectRow(res, fmt.Errorf("escalation policy %s: %w", id, ErrNotFound), "delete escalation policy "+id.String())
}
