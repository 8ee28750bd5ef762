package reference

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"
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
	var t struct {
		Roles    pq.StringArray `db:"roles"`
		Severity string         `db:"severity"`
	}
	err := st.DB.GetContext(ctx, &t, `SELECT roles, severity FROM alert_types WHERE alert_type = $1`, alertType)
	if errors.Is(err, sql.ErrNoRows) {
		return AlertPlan{}, fmt.Errorf("%w %s", ErrUnknownAlertType, alertType)
	}
	if err != nil {
		return AlertPlan{}, fmt.Errorf("load alert type %s: %w", alertType, err)
	}
	var p struct {
		ID       string `db:"id"`
		Steps    []byte `db:"steps"`
		Reminder int    `db:"start_reminder_seconds"`
	}
	// The alert type's own policy wins over its severity's.
	err = st.DB.GetContext(ctx, &p, `
		SELECT id, steps, start_reminder_seconds FROM escalation_policies
		WHERE alert_type = $1 OR severity = $2
		ORDER BY alert_type IS NULL LIMIT 1`, alertType, t.Severity)
	if errors.Is(err, sql.ErrNoRows) {
		return AlertPlan{}, fmt.Errorf("%w for %s", ErrNoPolicy, alertType)
	}
	if err != nil {
		return AlertPlan{}, fmt.Errorf("load escalation policy for %s: %w", alertType, err)
	}
	return AlertPlan{Roles: t.Roles, PolicyID: p.ID, Steps: p.Steps, StartReminderSeconds: p.Reminder}, nil
}
