package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/workflows"
)

// Alert delivers one alert to the incident workflow of dedupKey exactly as
// the API does (Update-With-Start). A new incident gets a fresh id and the
// alert type, severity, patient and room given; a merge ignores them.
func (e *Env) Alert(t testing.TB, taskQueue, dedupKey, alertType, severity, patientID, room string) workflows.AlertResult {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	h, err := e.Client.UpdateWithStartWorkflow(ctx, workflows.AlertWithStart(e.Client, taskQueue, &workflows.IncidentInput{
		IncidentID: uuid.NewString(), DedupKeyHash: workflows.DedupKeyHash(dedupKey),
		AlertType: alertType, Severity: severity, PatientID: patientID, Room: room, Source: "test", OpenedAt: now,
	}, &workflows.AlertUpdate{Count: 1, ObservedAt: now}))
	require.NoError(t, err)
	var res workflows.AlertResult
	require.NoError(t, h.Get(ctx, &res))
	return res
}
