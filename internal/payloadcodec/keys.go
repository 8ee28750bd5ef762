package payloadcodec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeySize is the length of a payload key: AES-256.
const KeySize = 32

// Key is one payload key. Its id is stored in every payload it encrypts and
// is not secret; Secret is.
type Key struct {
	ID     string
	Secret []byte
}

// String never shows the secret.
func (k Key) String() string { return k.ID + "=[redacted]" }

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (k Key) validate() error {
	if !keyIDPattern.MatchString(k.ID) {
		return fmt.Errorf("key id %q must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'", k.ID)
	}
	if len(k.Secret) != KeySize {
		return fmt.Errorf("key %q must be %d bytes, not %d", k.ID, KeySize, len(k.Secret))
	}
	return nil
}

// ParseKeys reads "id=<base64 of 32 bytes>,id=<base64>", the first being the
// active key; standard or URL base64, padded or not. Errors name the entry
// and its id, never the key material.
func ParseKeys(v string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, enc, ok := strings.Cut(part, "=")
		id, enc = strings.TrimSpace(id), strings.TrimSpace(enc)
		if !ok || enc == "" {
			return nil, fmt.Errorf("entry %d must look like id=<base64 of %d bytes>", i+1, KeySize)
		}
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("entry %d: the key id must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("entry %d: key id %q appears twice", i+1, id)
		}
		seen[id] = true
		secret, err := decodeBase64(enc)
		if err != nil {
			return nil, fmt.Errorf("entry %d (key %q): not base64", i+1, id)
		}
		if len(secret) != KeySize {
			return nil, fmt.Errorf("entry %d (key %q): must decode to %d bytes, not %d (make one with: openssl rand -base64 32)", i+1, id, KeySize, len(secret))
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("no key: set id=<base64 of 32 bytes>")
	}
	return keys, nil
}

// FormatKeys is the inverse of ParseKeys.
func FormatKeys(keys []Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.ID + "=" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(parts, ",")
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// NewKey makes a random key with the given id.
func NewKey(id string) (Key, error) {
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("make a payload key: %w", err)
	}
	return k, k.validate()
}

// DevKeyID is the id of the key LoadOrCreateKeyFile makes.
const DevKeyID = "dev"

// LoadOrCreateKeyFile reads keys (ParseKeys' format, one line) from path,
// or, when the file does not exist, makes a random key with id DevKeyID and
// writes it there, readable by the owner only. `vigil dev` keeps its key
// beside the embedded Temporal server's database this way, so payloads
// written before a restart decode after it. created reports a new file.
func LoadOrCreateKeyFile(path string) (keys []Key, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		keys, err := ParseKeys(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, false, fmt.Errorf("payload key file %s: %w", path, err)
		}
		return keys, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read payload key file: %w", err)
	}
	k, err := NewKey(DevKeyID)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, false, fmt.Errorf("create payload key directory: %w", err)
	}
	// The file appears whole or not at all (written aside, then linked,
	// which fails when another process linked its own first): two
	// processes starting at once agree on one key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".payload-key-*")
	if err != nil {
		return nil, false, fmt.Errorf("create payload key file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // CreateTemp makes it 0600
	if _, err := tmp.WriteString(FormatKeys([]Key{k}) + "\n"); err != nil {
		_ = tmp.Close()
		return nil, false, fmt.Errorf("write payload key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write payload key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKeyFile(path)
		}
		return nil, false, fmt.Errorf("create payload key file: %w", err)
	}
	return []Key{k}, true, nil
}
