// Package actionproof proves that Vigil's API authorised a staff action
// before it reached a workflow. Anyone who can send an Update to a run (the
// Temporal Web UI, the temporal CLI) could otherwise name any staff member
// and any access level in its arguments. The API signs what it authorised
// with an HMAC keyed by a secret it shares with the worker; the worker
// refuses an Update whose proof does not match.
//
// A proof reads "v1.<key id>.<mac>", where the key id is derived from the
// key (the first 8 hex digits of its SHA-256), so keys rotate without
// naming them: the worker verifies with the current key and any previous
// ones, the API signs with the current one.
package actionproof

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MinKeyLength is the shortest accepted key, in bytes.
const MinKeyLength = 32

const version = "v1"

// Errors of Verify.
var (
	ErrMissing    = errors.New("no proof")
	ErrMalformed  = errors.New("malformed proof")
	ErrUnknownKey = errors.New("proof signed with an unknown key")
	ErrMismatch   = errors.New("proof does not match the request")
)

type key struct {
	id     string
	secret []byte
}

// Keyring signs with its current key and verifies with every key.
type Keyring struct {
	current key
	byID    map[string][]byte
}

// New returns a keyring that signs with current and also accepts proofs
// made with previous keys (during a rotation).
func New(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{byID: map[string][]byte{}}
	for i, secret := range append([][]byte{current}, previous...) {
		if len(secret) < MinKeyLength {
			return nil, fmt.Errorf("action proof key %d: must be at least %d bytes", i+1, MinKeyLength)
		}
		sum := sha256.Sum256(secret)
		id := hex.EncodeToString(sum[:4])
		if _, dup := k.byID[id]; dup {
			return nil, fmt.Errorf("action proof key %d: repeats an earlier key", i+1)
		}
		k.byID[id] = append([]byte(nil), secret...)
		if i == 0 {
			k.current = key{id: id, secret: k.byID[id]}
		}
	}
	return k, nil
}

// Sign returns the proof of msg.
func (k *Keyring) Sign(msg []byte) string {
	return version + "." + k.current.id + "." + base64.RawURLEncoding.EncodeToString(mac(k.current.secret, msg))
}

// Verify checks that proof is a proof of msg made with one of the keys.
func (k *Keyring) Verify(msg []byte, proof string) error {
	if proof == "" {
		return ErrMissing
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || parts[0] != version {
		return ErrMalformed
	}
	secret, ok := k.byID[parts[1]]
	if !ok {
		return ErrUnknownKey
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ErrMalformed
	}
	if !hmac.Equal(got, mac(secret, msg)) {
		return ErrMismatch
	}
	return nil
}

func mac(secret, msg []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(msg)
	return h.Sum(nil)
}

// Message joins fields into the bytes a proof covers: each field is
// length-prefixed, so no two different field lists give the same bytes.
func Message(purpose string, fields ...string) []byte {
	var b []byte
	for _, f := range append([]string{purpose}, fields...) {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ';')
	}
	return b
}

// DeriveKey derives a proof key from a master secret shared for another
// purpose (Vigil's payload keys, which the API and the worker already
// share): HMAC-SHA256 of the purpose label under the secret, so the two uses
// never share a key and rotate together.
func DeriveKey(master []byte, label string) []byte {
	return mac(master, []byte("vigil/actionproof/v1/"+label))
}
