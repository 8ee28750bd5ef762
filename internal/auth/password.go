package auth

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Password length limits, in bytes. The upper bound is bcrypt's own limit:
// bcrypt ignores everything after the 72nd byte.
const (
	// MinPasswordLength is the minimum accepted password length in bytes.
	MinPasswordLength = 8
	// MaxPasswordLength is the maximum accepted password length in bytes.
	MaxPasswordLength = 72
)

// ErrPasswordLength is returned by HashPassword when the password is shorter
// than MinPasswordLength or longer than MaxPasswordLength bytes.
var ErrPasswordLength = errors.New("password must be between 8 and 72 bytes")

// dummyHash returns a bcrypt hash, computed once on first use, that
// CheckPassword compares against when the caller's hash is empty or
// malformed, so that a login attempt for an unknown user costs as much as
// one for a known user. It uses the same cost as HashPassword.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("vigil-dummy-password-for-timing"), bcrypt.DefaultCost)
	if err != nil {
		// Unreachable: the input is shorter than 72 bytes and the cost is
		// valid; the only other failure is the system random source, which
		// crashes the program on its own since Go 1.24.
		panic(fmt.Sprintf("auth: computing dummy bcrypt hash: %v", err))
	}
	return h
})

// HashPassword hashes plain with bcrypt at bcrypt.DefaultCost and returns
// the encoded hash for storage. It returns an error wrapping
// ErrPasswordLength when plain is shorter than MinPasswordLength or longer
// than MaxPasswordLength bytes.
func HashPassword(plain string) (string, error) {
	if n := len(plain); n < MinPasswordLength || n > MaxPasswordLength {
		return "", fmt.Errorf("auth: hash password: got %d bytes: %w", n, ErrPasswordLength)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(plain), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether plain matches the bcrypt hash. It never
// returns true for an empty or malformed hash, nor for a plain password
// longer than MaxPasswordLength (which HashPassword would have refused and
// bcrypt would silently truncate); in those cases it still performs a full
// bcrypt comparison against a dummy hash so that it takes roughly the same
// time. Callers should pass "" as hash when the user does
// not exist, rather than returning early, to avoid leaking which accounts
// exist through response timing.
func CheckPassword(hash, plain string) bool {
	h := []byte(hash)
	if _, err := bcrypt.Cost(h); hash == "" || err != nil || len(plain) > MaxPasswordLength {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(plain))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(plain)) == nil
}
