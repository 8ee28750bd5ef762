//go:build integration

package node_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/testenv"
)

var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "node", &db, nil)) }

func TestCountByStatus(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store := &node.Store{DB: db}

	got, err := store.CountByStatus(ctx, now)
	require.NoError(t, err)
	require.Len(t, got, 8, "every status, at zero")
	for status, n := range got {
		require.Zero(t, n, status)
	}

	hourAgo, weekAgo := now.Add(-time.Hour), now.Add(-7*24*time.Hour)
	for _, n := range []struct {
		id, headline string
		conditions   []string
		checked      *time.Time
	}{
		{"1", "ONLINE", []string{"ONLINE"}, &hourAgo},
		{"2", "ONLINE", []string{"ONLINE", "DWH OUTDATED"}, &hourAgo},
		{"3", "OFFLINE", []string{"OFFLINE"}, &hourAgo},
		{"4", "ONLINE", []string{"ONLINE"}, &weekAgo}, // not checked for a week: a gap
		{"5", "SOMETHING ELSE", []string{"SOMETHING ELSE"}, &hourAgo},
	} {
		_, err := db.ExecContext(ctx, `INSERT INTO broker_nodes (node_id, headline, conditions, last_checked) VALUES ($1, $2, $3, $4)`,
			n.id, n.headline, pq.StringArray(n.conditions), n.checked)
		require.NoError(t, err)
	}
	// Settings only: never checked, so a gap too.
	_, err = db.ExecContext(ctx, `INSERT INTO node_settings (node_id, common_name) VALUES ('6', 'Klinik Sechs')`)
	require.NoError(t, err)

	got, err = store.CountByStatus(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 2, got["ONLINE"])
	require.Equal(t, 1, got["OFFLINE"])
	require.Equal(t, 2, got["GAP IN MONITORING"])
	require.Equal(t, 1, got[node.UnknownStatus])
	require.Equal(t, 0, got["TESTING"])
	var total int
	for _, n := range got {
		total += n
	}
	require.Equal(t, 6, total)
}
