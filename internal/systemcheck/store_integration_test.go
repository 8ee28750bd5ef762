//go:build integration

package systemcheck_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/systemcheck"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "systemcheck", &db, nil)) }

func TestRecordIsIdempotentAndCheckReadsIt(t *testing.T) {
	ctx := context.Background()
	st := &systemcheck.Store{DB: db}
	id := uuid.NewString()
	_, err := st.Check(ctx, id)
	require.ErrorIs(t, err, systemcheck.ErrNotFound)

	in := &systemcheck.RecordInput{CheckID: id, WorkflowID: "system-check:" + id, RunID: "run-1", Note: "hello",
		RequestedAt: time.Now().UTC().Truncate(time.Millisecond)}
	tests := []struct {
		name     string
		identity string
	}{
		{name: "first write", identity: "1@worker-a"},
		{name: "a retry by another worker keeps the first row", identity: "2@worker-b"},
	}
	var first *systemcheck.Recorded
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Record(ctx, in, tt.identity)
			require.NoError(t, err)
			if first == nil {
				first = got
			}
			require.Equal(t, "1@worker-a", got.WorkerIdentity)
			require.True(t, first.RecordedAt.Equal(got.RecordedAt))
		})
	}
	row, err := st.Check(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "run-1", row.RunID)
	require.Equal(t, "hello", row.Note)
	require.True(t, in.RequestedAt.Equal(row.RequestedAt))
	require.Equal(t, "1@worker-a", row.WorkerIdentity)
}
