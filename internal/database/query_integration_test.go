//go:build integration

package database_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

func TestQueryHelpers(t *testing.T) {
	ctx := context.Background()
	dsn, err := testenv.NewDatabase(ctx, "database_query")
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Drop(context.Background(), dsn) })
	db, err := database.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.ExecContext(ctx, `CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO things VALUES (1, 'one'), (2, 'two')`)
	require.NoError(t, err)
	errMissing := errors.New("no such thing")

	name, err := database.Get[string](ctx, db, errMissing, "get thing", `SELECT name FROM things WHERE id = $1`, 2)
	require.NoError(t, err)
	require.Equal(t, "two", name)
	_, err = database.Get[string](ctx, db, errMissing, "get thing", `SELECT name FROM things WHERE id = $1`, 3)
	require.Same(t, errMissing, err, "no row is the not-found error as it is")
	_, err = database.Get[string](ctx, db, errMissing, "get thing", `SELECT nope FROM things`)
	require.ErrorContains(t, err, "get thing: ")

	name, found, err := database.Find[string](ctx, db, "find thing", `SELECT name FROM things WHERE id = $1`, 1)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "one", name)
	_, found, err = database.Find[string](ctx, db, "find thing", `SELECT name FROM things WHERE id = $1`, 3)
	require.NoError(t, err)
	require.False(t, found)

	var args database.Args
	q := `SELECT name FROM things WHERE id >= ` + args.Add(1) + ` AND id <= ` + args.Add(2) + ` ORDER BY id`
	require.Equal(t, `SELECT name FROM things WHERE id >= $1 AND id <= $2 ORDER BY id`, q)
	names, err := database.Select[string](ctx, db, "list things", q, args...)
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two"}, names)
	names, err = database.Select[string](ctx, db, "list things", `SELECT name FROM things WHERE id > 2`)
	require.NoError(t, err)
	require.NotNil(t, names, "no rows is an empty slice, not nil")
	require.Empty(t, names)

	res, err := db.ExecContext(ctx, `DELETE FROM things WHERE id = 1`)
	require.NoError(t, err)
	require.NoError(t, database.ExpectRow(res, errMissing, "delete thing"))
	res, err = db.ExecContext(ctx, `DELETE FROM things WHERE id = 1`)
	require.NoError(t, err)
	require.Same(t, errMissing, database.ExpectRow(res, errMissing, "delete thing"))
}
