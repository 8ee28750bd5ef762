package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vigil-health/vigil/internal/database"
)

// Workflow returns the id of the workflow that runs an incident and the
// incident's status as last projected; the error wraps ErrNotFound when no
// incident has the id.
func (s *Store) Workflow(ctx context.Context, incidentID string) (workflowID, status string, err error) {
	err = s.DB.QueryRowxContext(ctx, `SELECT workflow_id, status FROM incidents WHERE id = $1`, incidentID).Scan(&workflowID, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", fmt.Errorf("incident %s: %w", incidentID, ErrNotFound)
	case err != nil:
		return "", "", fmt.Errorf("look up incident %s: %w", incidentID, err)
	}
	return workflowID, status, nil
}

// OldestOpenByKeyHash returns the id of the oldest unresolved incident whose
// raw dedup key hashes to unscopedKeyHash, whatever its integration; found
// is false when there is none.
func (s *Store) OldestOpenByKeyHash(ctx context.Context, unscopedKeyHash string) (id string, found bool, err error) {
	return database.Find[string](ctx, s.DB, "look up open incident by key", `
		SELECT id FROM incidents WHERE unscoped_key_hash = $1 AND status <> 'RESOLVED'
		ORDER BY opened_at LIMIT 1`, unscopedKeyHash)
}

// OldestOpenOfOtherIntegration is OldestOpenByKeyHash among the incidents
// of integrations other than integration.
func (s *Store) OldestOpenOfOtherIntegration(ctx context.Context, unscopedKeyHash, integration string) (id string, found bool, err error) {
	return database.Find[string](ctx, s.DB, "look up open incident by key", `
		SELECT id FROM incidents WHERE unscoped_key_hash = $1 AND status <> 'RESOLVED' AND integration <> $2
		ORDER BY opened_at LIMIT 1`, unscopedKeyHash, integration)
}
