//go:build integration

package operatorsignal_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/operatorsignal"
	"github.com/vigil-health/vigil/internal/testenv"
)

var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "operatorsignal", &db, nil)) }

func TestRecord_OncePerEventKeyAndRefusesIncompleteRecords(t *testing.T) {
	ctx := context.Background()
	s := &operatorsignal.Store{DB: db}
	rec := &operatorsignal.Record{EventKey: "watch:w1/run/1", WorkflowID: "watch:w1", Kind: "watch", SubjectID: "w1",
		Signal: "pause", Actor: "operator:jo", Reason: "maintenance", Outcome: operatorsignal.Accepted, At: time.Now()}
	require.NoError(t, s.Record(ctx, rec))
	require.NoError(t, s.Record(ctx, rec), "a retried write is a no-op")
	var n int
	require.NoError(t, db.GetContext(ctx, &n, `SELECT count(*) FROM operator_signals WHERE event_key = $1`, rec.EventKey))
	require.Equal(t, 1, n)

	tests := []struct {
		name string
		rec  *operatorsignal.Record
	}{
		{"nil", nil},
		{"no event key", &operatorsignal.Record{WorkflowID: "w", Signal: "pause", Outcome: operatorsignal.Refused}},
		{"no workflow", &operatorsignal.Record{EventKey: "k", Signal: "pause", Outcome: operatorsignal.Refused}},
		{"no signal", &operatorsignal.Record{EventKey: "k", WorkflowID: "w", Outcome: operatorsignal.Refused}},
		{"no outcome", &operatorsignal.Record{EventKey: "k", WorkflowID: "w", Signal: "pause"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, s.Record(ctx, tt.rec), operatorsignal.ErrIncomplete)
		})
	}
}
