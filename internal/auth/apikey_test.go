package auth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
)

var apiKeyPattern = regexp.MustCompile(`^vk_[a-z2-7]{40}$`)

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for i := range 50 {
		key, err := auth.NewAPIKey()
		require.NoError(t, err)
		plain := key.Plaintext.Reveal()

		require.Regexp(t, apiKeyPattern, plain, "key %d", i)
		require.Len(t, plain, auth.APIKeyLength)
		require.Equal(t, plain[:10], key.Prefix)
		require.Len(t, key.Prefix, auth.APIKeyDisplayPrefixLength)

		sum := sha256.Sum256([]byte(plain))
		require.Equal(t, sum[:], key.Hash)
		require.Equal(t, key.Hash, auth.HashAPIKey(plain), "hash is stable")
		require.True(t, auth.CheckAPIKey(plain, key.Hash))

		require.False(t, seen[plain], "duplicate key")
		seen[plain] = true
	}
}

func TestHashAPIKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		plain string
		want  string
	}{
		{name: "empty", plain: "", want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{name: "abc", plain: "abc", want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, fmt.Sprintf("%x", auth.HashAPIKey(tt.plain)))
		})
	}
}

func TestCheckAPIKey(t *testing.T) {
	t.Parallel()
	key, err := auth.NewAPIKey()
	require.NoError(t, err)
	other, err := auth.NewAPIKey()
	require.NoError(t, err)
	plain := key.Plaintext.Reveal()

	tests := []struct {
		name  string
		plain string
		hash  []byte
		want  bool
	}{
		{name: "match", plain: plain, hash: key.Hash, want: true},
		{name: "other key", plain: other.Plaintext.Reveal(), hash: key.Hash},
		{name: "prefix only", plain: key.Prefix, hash: key.Hash},
		{name: "empty plaintext", plain: "", hash: key.Hash},
		{name: "nil hash", plain: plain, hash: nil},
		{name: "truncated hash", plain: plain, hash: key.Hash[:16]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, auth.CheckAPIKey(tt.plain, tt.hash))
		})
	}
}

func TestAPIKeySecretRedacted(t *testing.T) {
	t.Parallel()
	key, err := auth.NewAPIKey()
	require.NoError(t, err)
	plain := key.Plaintext.Reveal()
	secretPart := plain[len(key.Prefix):]

	render := func(f func(l *slog.Logger)) func() string {
		return func() string {
			var buf bytes.Buffer
			f(slog.New(slog.NewTextHandler(&buf, nil)))
			f(slog.New(slog.NewJSONHandler(&buf, nil)))
			return buf.String()
		}
	}
	jsonOf := func(v any) func() string {
		return func() string {
			b, err := json.Marshal(v)
			require.NoError(t, err)
			return string(b)
		}
	}

	tests := []struct {
		name   string
		render func() string
	}{
		{name: "Sprint secret", render: func() string { return fmt.Sprint(key.Plaintext) }},
		{name: "Sprintf %s secret", render: func() string { return fmt.Sprintf("%s", key.Plaintext) }},
		{name: "Sprintf %#v secret", render: func() string { return fmt.Sprintf("%#v", key.Plaintext) }},
		{name: "Sprint key", render: func() string { return fmt.Sprint(key) }},
		{name: "Sprintf %+v key", render: func() string { return fmt.Sprintf("%+v", key) }},
		{name: "Sprintf %#v key", render: func() string { return fmt.Sprintf("%#v", key) }},
		{name: "Sprintf %v key pointer", render: func() string { return fmt.Sprintf("%v", &key) }},
		{name: "slog secret attr", render: render(func(l *slog.Logger) { l.Info("created", "key", key.Plaintext) })},
		{name: "slog key attr", render: render(func(l *slog.Logger) { l.Info("created", "key", key) })},
		{name: "slog key in group", render: render(func(l *slog.Logger) { l.Info("created", slog.Group("g", "key", key)) })},
		{name: "json secret", render: jsonOf(key.Plaintext)},
		{name: "json key", render: jsonOf(key)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := tt.render()
			require.NotContains(t, out, plain)
			require.NotContains(t, out, secretPart)
			require.Contains(t, out, "[redacted]")
		})
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		header    string
		wantToken string
		wantOK    bool
	}{
		{name: "ok", header: "Bearer abc.def.ghi", wantToken: "abc.def.ghi", wantOK: true},
		{name: "lower-case scheme", header: "bearer abc", wantToken: "abc", wantOK: true},
		{name: "upper-case scheme", header: "BEARER abc", wantToken: "abc", wantOK: true},
		{name: "surrounding spaces", header: "  Bearer   abc  ", wantToken: "abc", wantOK: true},
		{name: "tab separator", header: "Bearer\tabc", wantToken: "abc", wantOK: true},
		{name: "api key", header: "Bearer vk_abcdefghij", wantToken: "vk_abcdefghij", wantOK: true},
		{name: "missing", header: ""},
		{name: "spaces only", header: "   "},
		{name: "basic scheme", header: "Basic x"},
		{name: "scheme only", header: "Bearer"},
		{name: "empty token", header: "Bearer "},
		{name: "blank token", header: "Bearer    "},
		{name: "no separator", header: "Bearerabc"},
		{name: "token without scheme", header: "abc.def.ghi"},
		{name: "two tokens", header: "Bearer abc def"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token, ok := auth.ParseBearer(tt.header)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.wantToken, token)
		})
	}
}
