package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/vigil-health/vigil/internal/auth"
)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		plain   string
		wantErr error
	}{
		{name: "minimum length", plain: "12345678"},
		{name: "typical", plain: "correct horse battery staple"},
		{name: "maximum length", plain: strings.Repeat("a", 72)},
		{name: "multibyte within limit", plain: "pässwörd€€"},
		{name: "empty", plain: "", wantErr: auth.ErrPasswordLength},
		{name: "too short", plain: "1234567", wantErr: auth.ErrPasswordLength},
		{name: "too long", plain: strings.Repeat("a", 73), wantErr: auth.ErrPasswordLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hash, err := auth.HashPassword(tt.plain)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Empty(t, hash)
				return
			}
			require.NoError(t, err)
			require.NotEqual(t, tt.plain, hash)
			cost, err := bcrypt.Cost([]byte(hash))
			require.NoError(t, err)
			require.Equal(t, bcrypt.DefaultCost, cost)
			require.True(t, auth.CheckPassword(hash, tt.plain), "round trip")
		})
	}
}

func TestHashPasswordErrorDoesNotLeakPassword(t *testing.T) {
	t.Parallel()
	_, err := auth.HashPassword("s3cr!t")
	require.ErrorIs(t, err, auth.ErrPasswordLength)
	require.NotContains(t, err.Error(), "s3cr!t")
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	const plain = "correct horse battery staple"
	hash, err := auth.HashPassword(plain)
	require.NoError(t, err)
	hash72, err := auth.HashPassword(strings.Repeat("x", 72))
	require.NoError(t, err)

	tests := []struct {
		name  string
		hash  string
		plain string
		want  bool
	}{
		{name: "match", hash: hash, plain: plain, want: true},
		{name: "wrong password", hash: hash, plain: "correct horse battery stapler"},
		{name: "empty password", hash: hash, plain: ""},
		{name: "unknown user empty hash", hash: "", plain: plain},
		{name: "unknown user empty hash empty password", hash: "", plain: ""},
		{name: "malformed hash", hash: "not-a-bcrypt-hash", plain: plain},
		{name: "plaintext stored as hash", hash: plain, plain: plain},
		{name: "truncated hash", hash: hash[:len(hash)-5], plain: plain},
		{name: "longer than 72 bytes not truncated to match", hash: hash72, plain: strings.Repeat("x", 73)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, auth.CheckPassword(tt.hash, tt.plain))
		})
	}
}
