package reference

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
)

// APIKey is the public view of an alert source's API key: never its hash,
// and never its plaintext, which is shown once, when it is created.
type APIKey struct {
	// ID is the key's id.
	ID int64 `json:"id" db:"id"`
	// Name says which alert source holds the key.
	Name string `json:"name" db:"name"`
	// Prefix is the key's non-secret start, to tell keys apart.
	Prefix string `json:"prefix" db:"prefix"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `json:"created_at" db:"created_at"`
	// RevokedAt is when the key was revoked; nil while it is valid.
	RevokedAt *time.Time `json:"revoked_at" db:"revoked_at"`
}

const apiKeyColumns = `id, name, prefix, created_at, revoked_at`

// APIKeyInput is the body of an API key creation.
type APIKeyInput struct {
	// Name says which alert source will hold the key.
	Name string `json:"name"`
}

// Validate checks the input.
func (in *APIKeyInput) Validate() error {
	return checkText("name", in.Name, 200, true, false)
}

// CreateAPIKey generates a key for in.Name and stores its hash. It returns
// the stored record and the plaintext, which is not kept anywhere and must
// be shown to the operator once.
func (st *Store) CreateAPIKey(ctx context.Context, in APIKeyInput) (APIKey, auth.Secret, error) {
	if err := in.Validate(); err != nil {
		return APIKey{}, "", err
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create api key: %w", err)
	}
	var k APIKey
	if err := st.DB.GetContext(ctx, &k, `
		INSERT INTO api_keys (name, prefix, key_hash) VALUES ($1, $2, $3)
		RETURNING `+apiKeyColumns, in.Name, key.Prefix, key.Hash); err != nil {
		return APIKey{}, "", mapDBError("create api key", err)
	}
	return k, key.Plaintext, nil
}

// ReplaceAPIKey revokes every valid key named name and creates a new one,
// in one transaction (the demo alert generator gets a fresh key on each
// start). It returns the plaintext, which is not kept anywhere.
func (st *Store) ReplaceAPIKey(ctx context.Context, name string) (auth.Secret, error) {
	key, err := auth.NewAPIKey()
	if err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	tx, err := st.DB.BeginTxx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := revokeNamed(ctx, tx, name); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (name, prefix, key_hash) VALUES ($1, $2, $3)`, name, key.Prefix, key.Hash); err != nil {
		return "", fmt.Errorf("store %s key: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("commit %s key: %w", name, err)
	}
	return key.Plaintext, nil
}

// RevokeAPIKeysNamed revokes every valid key named name; there may be none.
func (st *Store) RevokeAPIKeysNamed(ctx context.Context, name string) error {
	return revokeNamed(ctx, st.DB, name)
}

func revokeNamed(ctx context.Context, ex sqlx.ExecerContext, name string) error {
	if _, err := ex.ExecContext(ctx, `UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL`, name); err != nil {
		return fmt.Errorf("revoke the %s keys: %w", name, err)
	}
	return nil
}

// ListAPIKeys returns a page of API keys, revoked ones included, ordered by
// id.
func (st *Store) ListAPIKeys(ctx context.Context, p Page) (List[APIKey], error) {
	return selectList[APIKey](ctx, st.DB, p, "list api keys", `
		SELECT `+apiKeyColumns+` FROM api_keys
		ORDER BY id LIMIT $1 OFFSET $2`, p.Limit+1, p.Offset)
}

// RevokeAPIKey marks key id revoked (keeping the first revocation time when
// it already is), or returns ErrNotFound.
func (st *Store) RevokeAPIKey(ctx context.Context, id int64) error {
	res, err := st.DB.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	return database.ExpectRow(res, fmt.Errorf("api key %d: %w", id, ErrNotFound), fmt.Sprintf("revoke api key %d", id))
}

// APIKeyByToken returns the valid (not revoked) key whose plaintext is
// token, or ErrNotFound. Only the token's hash reaches the database.
func (st *Store) APIKeyByToken(ctx context.Context, token string) (APIKey, error) {
	return database.Get[APIKey](ctx, st.DB, fmt.Errorf("api key: %w", ErrNotFound), "look up api key",
		`SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, auth.HashAPIKey(token))
}
