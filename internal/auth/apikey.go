package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"log/slog"
	"strings"
)

// APIKeyPrefix starts every Vigil API key, so that leaked keys are easy to
// recognise in code and by secret scanners.
const APIKeyPrefix = "vk_"

// apiKeyRandomBytes is the number of random bytes in an API key: 25 bytes
// (200 bits) encode to exactly 40 base32 characters.
const apiKeyRandomBytes = 25

// APIKeyLength is the length of an API key's plaintext in bytes: the
// APIKeyPrefix followed by 40 base32 characters.
const APIKeyLength = len(APIKeyPrefix) + 40

// APIKeyDisplayPrefixLength is the length of APIKey.Prefix.
const APIKeyDisplayPrefixLength = 10

// redacted replaces secrets in printed and logged output.
const redacted = "[redacted]"

// apiKeyEncoding is lower-case RFC 4648 base32 without padding.
var apiKeyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Secret is a string that must not be printed or logged. Its String,
// GoString, LogValue, MarshalJSON and MarshalText methods all yield
// "[redacted]"; call Reveal to obtain the value.
type Secret string

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so that %#v does not reveal the secret.
func (Secret) GoString() string { return redacted }

// LogValue returns "[redacted]" for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", so that encoders never emit the secret
// by accident. Send Reveal's result explicitly when the secret must be
// shown.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "[redacted]"; see MarshalText.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// APIKey is a newly generated API key. Store Prefix and Hash; show
// Plaintext to the operator once and then discard it.
type APIKey struct {
	// Plaintext is the full key, APIKeyPrefix followed by 40 random base32
	// characters (200 bits of entropy).
	Plaintext Secret
	// Prefix is the first APIKeyDisplayPrefixLength characters of the
	// plaintext. It is safe to store and display, to help operators tell
	// keys apart.
	Prefix string
	// Hash is the SHA-256 hash of the plaintext, as computed by HashAPIKey.
	Hash []byte
}

// String returns a description of k without the plaintext.
func (k APIKey) String() string {
	return fmt.Sprintf("auth.APIKey{Prefix: %q, Plaintext: %s}", k.Prefix, redacted)
}

// GoString returns the same description as String, for %#v.
func (k APIKey) GoString() string { return k.String() }

// LogValue returns a slog group with the prefix only.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("prefix", k.Prefix), slog.String("plaintext", redacted))
}

// NewAPIKey generates a random API key.
func NewAPIKey() (APIKey, error) {
	var b [apiKeyRandomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return APIKey{}, fmt.Errorf("auth: new api key: %w", err)
	}
	plain := APIKeyPrefix + apiKeyEncoding.EncodeToString(b[:])
	return APIKey{
		Plaintext: Secret(plain),
		Prefix:    plain[:APIKeyDisplayPrefixLength],
		Hash:      HashAPIKey(plain),
	}, nil
}

// HashAPIKey returns the SHA-256 hash of an API key's plaintext, the value
// to store and look up. A fast hash is appropriate because the key carries
// 200 random bits, unlike a password.
func HashAPIKey(plaintext string) []byte {
	sum := sha256.Sum256([]byte(plaintext))
	return sum[:]
}

// CheckAPIKey reports, in constant time, whether plaintext hashes to hash.
func CheckAPIKey(plaintext string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashAPIKey(plaintext), hash) == 1
}

// ParseBearer extracts the token from an Authorization header value of the
// form "Bearer <token>". The scheme is matched case-insensitively and
// surrounding spaces are trimmed. It returns false when the header is
// empty, uses another scheme, or has an empty token or one containing
// whitespace.
func ParseBearer(header string) (string, bool) {
	const scheme = "bearer"
	header = strings.TrimSpace(header)
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	rest := header[len(scheme):]
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false // for example "Bearerabc"
	}
	token := strings.TrimSpace(rest)
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}
