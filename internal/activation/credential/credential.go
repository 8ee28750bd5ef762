// Package credential makes and checks the one-time secrets of activations:
// PINs, activation codes, device codes and authorisation codes. Secrets are
// drawn from crypto/rand, stored only as argon2id hashes with a per-record
// random salt, compared in constant time, and found by a keyed lookup digest
// (HMAC-SHA256 under a server key), since a salted hash cannot be looked up.
package credential

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Alphabets of the secrets.
const (
	// PINAlphabet is human-readable: no O, 0, L, 1 or I, which people
	// confuse when reading a PIN aloud or off a letter.
	PINAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	// CodeAlphabet is the alphabet of activation and authorisation codes.
	CodeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// Digits is the alphabet of device activation codes.
	Digits = "0123456789"
)

// Lengths of the secrets.
const (
	// MinPINLength is the shortest PIN allowed; DefaultPINLength is used when
	// none is configured; MaxPINLength bounds the configuration.
	MinPINLength     = 4
	DefaultPINLength = 4
	MaxPINLength     = 16
	// ActivationCodeLength is the length of a patient activation code.
	ActivationCodeLength = 30
	// DeviceCodeLength is the length of a device activation code (digits).
	DeviceCodeLength = 9
	// AuthorisationCodeLength is the length of an authorisation code.
	AuthorisationCodeLength = 32
	// MinKeyLength is the minimum length, in bytes, of the server secret
	// given to NewKeys.
	MinKeyLength = 32
)

// argon2id parameters: the OWASP minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltBytes    = 16
)

var (
	// ErrWeakKey is returned by NewKeys for a secret shorter than
	// MinKeyLength bytes.
	ErrWeakKey = errors.New("credential: server secret is too short")
	// ErrBadSalt is returned for a salt that is not the hex encoding of at
	// least 16 bytes.
	ErrBadSalt = errors.New("credential: malformed salt")
)

// Random returns n characters drawn uniformly from alphabet with crypto/rand.
func Random(alphabet string, n int) (string, error) {
	if n <= 0 || alphabet == "" {
		return "", fmt.Errorf("credential: random string of %d characters from %d: invalid length", n, len(alphabet))
	}
	limit := big.NewInt(int64(len(alphabet)))
	var b strings.Builder
	b.Grow(n)
	for range n {
		i, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", fmt.Errorf("credential: random: %w", err)
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String(), nil
}

// NewPIN returns a PIN of n characters (at least MinPINLength) from
// PINAlphabet.
func NewPIN(n int) (string, error) {
	if n < MinPINLength || n > MaxPINLength {
		return "", fmt.Errorf("credential: PIN length %d is not %d to %d", n, MinPINLength, MaxPINLength)
	}
	return Random(PINAlphabet, n)
}

// NewActivationCode returns a random activation code of
// ActivationCodeLength characters from CodeAlphabet.
func NewActivationCode() (string, error) { return Random(CodeAlphabet, ActivationCodeLength) }

// NewDeviceCode returns a random device activation code of DeviceCodeLength
// digits.
func NewDeviceCode() (string, error) { return Random(Digits, DeviceCodeLength) }

// NewAuthorisationCode returns a random authorisation code of
// AuthorisationCodeLength characters from CodeAlphabet.
func NewAuthorisationCode() (string, error) { return Random(CodeAlphabet, AuthorisationCodeLength) }

// NormalizeCode upper-cases a PIN or code typed by a person and drops
// surrounding spaces: PINs and codes are case-insensitive.
func NormalizeCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// Valid reports whether s is exactly n characters from alphabet.
func Valid(s, alphabet string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// Hash returns the argon2id hash of secret under a new random salt, both
// hex-encoded.
func Hash(secret string) (hash, salt string, err error) {
	raw := make([]byte, saltBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("credential: salt: %w", err)
	}
	salt = hex.EncodeToString(raw)
	return hashRaw(secret, raw), salt, nil
}

// HashWithSalt returns the argon2id hash of secret under salt, as Hash made
// it; it fails only for a malformed salt.
func HashWithSalt(secret, salt string) (string, error) {
	raw, err := hex.DecodeString(salt)
	if err != nil || len(raw) < saltBytes {
		return "", ErrBadSalt
	}
	return hashRaw(secret, raw), nil
}

func hashRaw(secret string, salt []byte) string {
	return hex.EncodeToString(argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen))
}

// Verify reports whether secret hashes to hash under salt. The comparison
// takes the same time wherever the hashes differ.
func Verify(secret, hash, salt string) bool {
	got, err := HashWithSalt(secret, salt)
	if err != nil {
		return false
	}
	return Equal(got, hash)
}

// Equal compares two hashes (or digests) in constant time. Empty values are
// never equal, so an unset hash matches nothing.
func Equal(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Keys derive patient activation codes and the lookup digests of codes from
// one server secret. A Keys never shows its key material when printed.
type Keys struct {
	derive []byte
	lookup []byte
}

// NewKeys returns Keys for secret, which must be at least MinKeyLength
// bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < MinKeyLength {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrWeakKey, len(secret), MinKeyLength)
	}
	k := &Keys{derive: append([]byte(nil), secret...)}
	// A separate key for lookups: a digest never helps derive a code.
	k.lookup = mac(secret, "vigil credential lookup key")
	return k, nil
}

// String hides the key material.
func (k *Keys) String() string { return "credential.Keys{[redacted]}" }

// GoString hides the key material.
func (k *Keys) GoString() string { return k.String() }

// Digest is the keyed lookup digest of a code, HMAC-SHA256 under the lookup
// key, hex-encoded: stored to find a record by its code without storing the
// code.
func (k *Keys) Digest(code string) string {
	return hex.EncodeToString(mac(k.lookup, code))
}

// PatientActivationCode derives the activation code of a patient
// activation from its id: the same id always gives the same code, so a
// re-created activation keeps its code although the code is never stored.
func (k *Keys) PatientActivationCode(activationID string) string {
	sum := mac(k.derive, "patient-activation:"+activationID)
	n := new(big.Int).SetBytes(sum)
	base := big.NewInt(int64(len(CodeAlphabet)))
	digit := new(big.Int)
	out := make([]byte, ActivationCodeLength)
	// 256 bits against 36^30 (about 2^155): the modulo bias is negligible.
	for i := range out {
		n.DivMod(n, base, digit)
		out[i] = CodeAlphabet[digit.Int64()]
	}
	return string(out)
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
