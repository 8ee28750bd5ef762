//go:build integration

package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/activation"
)

func insertActivation(t *testing.T, kind, subject, digest string) string {
	t.Helper()
	id := uuid.NewString()
	_, err := db.Exec(`INSERT INTO activations (id, kind, subject_id, workflow_id, code_digest, code_hash, code_salt, pin_salt, expires_at, created_by)
		VALUES ($1, $2, $3, $4, $5, 'h', 's', 'ps', now() + interval '1 day', 'test')`, id, kind, subject, "activation:"+kind+":"+subject, digest)
	require.NoError(t, err)
	return id
}

func TestRecordActivation_StateAuditAndIdempotence(t *testing.T) {
	ctx := context.Background()
	a := &activities.Activations{Store: &activation.Store{DB: db}}
	id := insertActivation(t, "patient", "rec-"+uuid.NewString()[:8], uuid.NewString())
	audit := &activation.AuthAuditEvent{Event: "attempt_failed", SubjectType: "patient", SubjectID: "p", Reason: "wrong PIN (1 of 10)",
		RequestID: "req-1", ClientIP: "10.0.0.1"}
	in := &activation.RecordActivationInput{ActivationID: id, EventKey: "wf:run:" + id + ":1", State: "pending", Attempts: 1, Audit: audit}
	require.NoError(t, a.RecordActivation(ctx, in))
	require.NoError(t, a.RecordActivation(ctx, in), "a retry")
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM auth_audit WHERE event_key = $1`, in.EventKey))
	require.Equal(t, 1, n, "a retried write records its audit event once")

	now := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, a.RecordActivation(ctx, &activation.RecordActivationInput{ActivationID: id, EventKey: "wf:run:" + id + ":2",
		State: "activated", Attempts: 1, AuthCodeHash: "ah", AuthCodeSalt: "as", ActivatedAt: now,
		Audit: &activation.AuthAuditEvent{Event: "completed", SubjectType: "patient", SubjectID: "p"}}))
	// A later change without material keeps the authorisation code's hash.
	require.NoError(t, a.RecordActivation(ctx, &activation.RecordActivationInput{ActivationID: id, EventKey: "wf:run:" + id + ":3",
		State: "redeemed", Attempts: 1, FinishedAt: now}))
	var row struct {
		State       string    `db:"state"`
		Attempts    int       `db:"attempts"`
		AuthHash    string    `db:"auth_code_hash"`
		AuthSalt    string    `db:"auth_code_salt"`
		ActivatedAt time.Time `db:"activated_at"`
		FinishedAt  time.Time `db:"finished_at"`
	}
	require.NoError(t, db.Get(&row, `SELECT state, attempts, auth_code_hash, auth_code_salt, activated_at, finished_at FROM activations WHERE id = $1`, id))
	require.Equal(t, "redeemed", row.State)
	require.Equal(t, 1, row.Attempts)
	require.Equal(t, "ah", row.AuthHash)
	require.Equal(t, "as", row.AuthSalt)
	require.True(t, now.Equal(row.ActivatedAt))
	require.True(t, now.Equal(row.FinishedAt))
}

func TestRecordActivation_RecreateMaterialAndCollision(t *testing.T) {
	ctx := context.Background()
	a := &activities.Activations{Store: &activation.Store{DB: db}}
	taken := uuid.NewString()
	insertActivation(t, "device", uuid.NewString(), taken)
	id := insertActivation(t, "device", uuid.NewString(), uuid.NewString())
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)

	err := a.RecordActivation(ctx, &activation.RecordActivationInput{ActivationID: id, State: "pending",
		Material: &activation.Material{CodeDigest: taken, CodeHash: "h2", CodeSalt: "s2", ExpiresAt: expires}})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, activities.ErrTypeCodeCollision, appErr.Type())
	require.True(t, appErr.NonRetryable())

	fresh := uuid.NewString()
	require.NoError(t, a.RecordActivation(ctx, &activation.RecordActivationInput{ActivationID: id, State: "pending",
		Material: &activation.Material{CodeDigest: fresh, CodeHash: "h2", CodeSalt: "s2", ExpiresAt: expires}}))
	var got struct {
		Digest  string    `db:"code_digest"`
		Hash    string    `db:"code_hash"`
		Expires time.Time `db:"expires_at"`
	}
	require.NoError(t, db.Get(&got, `SELECT code_digest, code_hash, expires_at FROM activations WHERE id = $1`, id))
	require.Equal(t, fresh, got.Digest)
	require.Equal(t, "h2", got.Hash)
	require.True(t, expires.Equal(got.Expires))
}
