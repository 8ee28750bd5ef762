package database

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// InTx runs fn in a transaction of db, committing when fn returns nil and
// rolling back otherwise. fn's error is returned as it is.
func InTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
