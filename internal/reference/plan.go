package reference

import (
	"context"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
)

// ErrUnknownAlertType and ErrNoPolicy say why an alert type has no plan.
var (
	ErrUnknownAlertType = errors.New("unknown alert type")
	ErrNoPolicy         = errors.New("no escalation policy")
)

// AlertPlan is what an incident of an alert type follows: the type's
// ordered roles and the escalation policy that applies to it.
type AlertPlan struct {
	Roles                []string
	PolicyID             string
	Steps                []byte // the policy's steps, as stored (JSON)
	StartReminderSeconds int
}

// AlertPlan reads alertType's roles and its escalation policy: the type's
// own policy when one exists, else its severity's. It returns
// ErrUnknownAlertType or ErrNoPolicy when there is none.
func (st *Store) AlertPlan(ctx context.Context, alertType string) (AlertPlan, error) {
	type alertTypeRow struct {
		Roles    pq.StringArray `db:"roles"`
		Severity string         `db:"severity"`
	}
	t, err := database.Get[alertTypeRow](ctx, st.DB, fmt.Errorf("%w %s", ErrUnknownAlertType, alertType), "load alert type "+alertType,
		`SELECT roles, severity FROM alert_types WHERE alert_type = $1`, alertType)
	if err != nil {
		return AlertPlan{}, err
	}
	type planPolicyRow struct {
		ID       string `db:"id"`
		Steps    []byte `db:"steps"`
		Reminder int    `db:"start_reminder_seconds"`
	}
	// The alert type's own policy wins over its severity's.
	p, err := database.Get[planPolicyRow](ctx, st.DB, fmt.Errorf("%w for %s", ErrNoPolicy, alertType), "load escalation policy for "+alertType, `
		SELECT id, steps, start_reminder_seconds FROM escalation_policies
		WHERE alert_type = $1 OR severity = $2
		ORDER BY alert_type IS NULL LIMIT 1`, alertType, t.Severity)
	if err != nil {
		return AlertPlan{}, err
	}
	return AlertPlan{Roles: t.Roles, PolicyID: p.ID, Steps: p.Steps, StartReminderSeconds: p.Reminder}, nil
}
