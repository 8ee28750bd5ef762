//go:build integration

package reference_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/reference"
)

func TestAccount(t *testing.T) {
	ctx := context.Background()
	a, err := store().Account(ctx, "C01")
	require.NoError(t, err)
	require.Equal(t, reference.Account{ID: "C01", Login: "c01", Name: "Rosa Delgado", Role: "CHARGE_NURSE", Access: "charge", Active: true}, a)

	_, err = store().Account(ctx, "nobody")
	require.ErrorIs(t, err, reference.ErrNotFound)
	require.ErrorIs(t, err, sql.ErrNoRows, "callers written before the store still recognise it")
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name     string
		login    string
		password string
		wantOK   bool
	}{
		{name: "right password", login: "n01", password: "reference-test-password", wantOK: true},
		{name: "wrong password", login: "n01", password: "not-the-password"},
		{name: "unknown login", login: "nobody", password: "reference-test-password"},
		{name: "empty password", login: "n01", password: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok, err := store().CheckPassword(context.Background(), tt.login, tt.password)
			require.NoError(t, err)
			require.Equal(t, tt.wantOK, ok)
			if tt.wantOK {
				require.Equal(t, "N01", a.ID)
			} else {
				require.Empty(t, a.ID)
			}
		})
	}
}

func TestAccountBySlackUserAndStaffExists(t *testing.T) {
	ctx := context.Background()
	created, err := store().CreateStaff(ctx, reference.NewStaff{
		ID: "T-SLACK", Login: "login-t-slack", Name: "Person T-SLACK", Role: "NURSE", Access: "charge", SlackUserID: "U0TSLACK1",
		Password: "a-good-password",
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DELETE FROM staff WHERE id = $1`, created.ID)
		require.NoError(t, err)
	})

	a, err := store().AccountBySlackUser(ctx, "U0TSLACK1")
	require.NoError(t, err)
	require.Equal(t, "T-SLACK", a.ID)
	require.Equal(t, "charge", a.Access)
	for _, unlinked := range []string{"U0NOBODY1", ""} {
		_, err = store().AccountBySlackUser(ctx, unlinked)
		require.ErrorIs(t, err, reference.ErrNotFound, "%q", unlinked)
	}

	tests := []struct {
		id   string
		want bool
	}{{"T-SLACK", true}, {"N01", true}, {"nobody", false}}
	for _, tt := range tests {
		got, err := store().StaffExists(ctx, tt.id)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, tt.id)
	}
}

func TestAPIKeyByToken(t *testing.T) {
	ctx := context.Background()
	key, secret, err := store().CreateAPIKey(ctx, reference.APIKeyInput{Name: "by-token test"})
	require.NoError(t, err)
	got, err := store().APIKeyByToken(ctx, string(secret))
	require.NoError(t, err)
	require.Equal(t, key.ID, got.ID)
	require.Equal(t, "by-token test", got.Name)

	_, err = store().APIKeyByToken(ctx, "vk_not-a-key")
	require.ErrorIs(t, err, reference.ErrNotFound)
	require.NoError(t, store().RevokeAPIKey(ctx, key.ID))
	_, err = store().APIKeyByToken(ctx, string(secret))
	require.ErrorIs(t, err, reference.ErrNotFound, "a revoked key no longer works")
}

func TestAlertTypeSeverities(t *testing.T) {
	ctx := context.Background()
	want, err := store().ListAlertTypes(ctx, reference.AlertTypeFilter{}, reference.Page{Limit: reference.MaxLimit})
	require.NoError(t, err)
	got, err := store().AlertTypeSeverities(ctx)
	require.NoError(t, err)
	require.Len(t, got, len(want.Items))
	for _, at := range want.Items {
		require.Equal(t, at.Severity, got[at.AlertType], at.AlertType)
	}
}

func TestReplaceAPIKey_RevokesThePreviousKeyOfThatName(t *testing.T) {
	ctx := context.Background()
	first, err := store().ReplaceAPIKey(ctx, "replace test")
	require.NoError(t, err)
	second, err := store().ReplaceAPIKey(ctx, "replace test")
	require.NoError(t, err)
	require.NotEqual(t, first, second)

	_, err = store().APIKeyByToken(ctx, first.Reveal())
	require.ErrorIs(t, err, reference.ErrNotFound, "the previous key is revoked")
	got, err := store().APIKeyByToken(ctx, second.Reveal())
	require.NoError(t, err)
	require.Equal(t, "replace test", got.Name)
}

func TestAlertPlan(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		alertType string
		wantErr   error
	}{
		{"seeded type with a severity policy", "FALL_DETECTED", nil},
		{"unknown type", "NO_SUCH_TYPE", reference.ErrUnknownAlertType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := store().AlertPlan(ctx, tt.alertType)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotEmpty(t, p.Roles)
			require.NotEmpty(t, p.PolicyID)
			require.True(t, json.Valid(p.Steps), "steps are the stored JSON")
		})
	}
}
