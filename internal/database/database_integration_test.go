//go:build integration

package database_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

func TestEnsureExistsMigrateAndDrop(t *testing.T) {
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "database")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })

	created, err := database.EnsureExists(ctx, dsn)
	require.NoError(t, err)
	require.False(t, created, "NewDatabase already created it")

	db, err := database.Open(ctx, dsn)
	require.NoError(t, err)

	st, err := database.Status(ctx, db.DB)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, s := range st {
		require.False(t, s.Applied, s.File)
	}

	logger := slog.New(slog.DiscardHandler)
	require.NoError(t, database.Migrate(ctx, db.DB, logger))
	require.NoError(t, database.Migrate(ctx, db.DB, logger), "migrating twice is a no-op")
	st, err = database.Status(ctx, db.DB)
	require.NoError(t, err)
	for _, s := range st {
		require.True(t, s.Applied, s.File)
	}
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM system_checks`))
	require.NoError(t, db.Close())

	require.NoError(t, database.Drop(ctx, dsn))
	created, err = database.EnsureExists(ctx, dsn)
	require.NoError(t, err)
	require.True(t, created, "a dropped database is created again")
}

func TestConcurrentMigrationsAreSerialised(t *testing.T) {
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "database_lock")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })

	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := database.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = db.Close() }()
			errs <- database.Migrate(ctx, db.DB, slog.New(slog.DiscardHandler))
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}

func TestOpenNamesAnUnreachableServer(t *testing.T) {
	_, err := database.Open(context.Background(), "postgres://postgres@127.0.0.1:1/vigil?sslmode=disable&connect_timeout=1")
	require.ErrorContains(t, err, "connect to postgres")
}
