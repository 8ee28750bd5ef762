// Package payloadcodec encrypts every payload Vigil hands to Temporal, so
// workflow inputs, update and signal arguments, query results, activity
// inputs and results, memos and failure messages are stored as ciphertext
// and nobody with only Temporal access (its database, the Web UI, tctl)
// reads patient ids, rooms or notes.
//
// The codec is AES-256-GCM with a random 96-bit nonce per payload, applied
// to the whole marshalled payload (metadata included), as in Temporal's
// encryption sample: an encrypted payload has the metadata
// encoding=binary/encrypted and encryption-key-id=<id>, and its data is
// nonce || ciphertext || tag. A Keyring holds one active key, which
// encrypts, and older keys that only decrypt, so keys rotate without
// breaking running workflows.
//
// Decode leaves payloads that are not encrypted as they are: histories
// recorded before the codec was turned on still replay. Search attributes
// never go through the codec (the SDK encodes them with the default
// converter), so they stay readable; they hold no patient data.
package payloadcodec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// EncodingEncrypted is the encoding of an encrypted payload.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// Errors of Decode, for errors.Is.
var (
	// ErrUnknownKey: the payload was encrypted with a key the keyring does
	// not hold (a key retired too early, or another deployment's).
	ErrUnknownKey = errors.New("payload encrypted with an unknown key")
	// ErrTampered: the ciphertext does not authenticate under its key
	// (changed, truncated, or encrypted with another key of the same id).
	ErrTampered = errors.New("encrypted payload does not authenticate")
)

// nonceSize is GCM's standard nonce length; random nonces of this size
// allow about 2^32 payloads per key before rotation is due.
const nonceSize = 12

// Codec is a converter.PayloadCodec that encrypts with the keyring's active
// key and decrypts with any of its keys. It is safe for concurrent use.
type Codec struct {
	keys *Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec over keys.
func New(keys *Keyring) *Codec { return &Codec{keys: keys} }

// ActiveKeyID is the id of the key new payloads are encrypted with.
func (c *Codec) ActiveKeyID() string { return c.keys.active }

// KeyIDs lists every key id, the active one first.
func (c *Codec) KeyIDs() []string { return append([]string(nil), c.keys.ids...) }

// DataConverter is the SDK's default data converter with every payload
// passed through the codec: the converter to give a Temporal client.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// Encode encrypts each payload with the active key. The payloads are not
// changed.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.keys.keys[c.keys.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("marshal payload: %w", err)
		}
		// One allocation: nonce, then the sealed text appended after it.
		buf := make([]byte, nonceSize, nonceSize+len(plain)+k.Overhead())
		if _, err := rand.Read(buf); err != nil {
			return payloads, fmt.Errorf("payload nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.keys.active),
			},
			Data: k.Seal(buf, buf[:nonceSize], plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload and passes any other through
// unchanged. A payload under an unknown key id or one that does not
// authenticate fails the whole call (ErrUnknownKey, ErrTampered).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		k, ok := c.keys.keys[id]
		if !ok {
			return payloads, fmt.Errorf("%w %q (known: %v)", ErrUnknownKey, id, c.keys.ids)
		}
		data := p.GetData()
		if len(data) < nonceSize+k.Overhead() {
			return payloads, fmt.Errorf("%w: key %q: %d bytes is too short", ErrTampered, id, len(data))
		}
		plain, err := k.Open(nil, data[:nonceSize], data[nonceSize:], nil)
		if err != nil {
			return payloads, fmt.Errorf("%w: key %q", ErrTampered, id)
		}
		dec := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, dec); err != nil {
			return payloads, fmt.Errorf("decrypted payload (key %q) is not a payload: %w", id, err)
		}
		out[i] = dec
	}
	return out, nil
}

// Keyring is the set of keys a codec knows: the active one encrypts, every
// one decrypts.
type Keyring struct {
	active string
	ids    []string
	keys   map[string]cipher.AEAD
}

// NewKeyring builds a keyring from keys, the first being the active one.
// Every key must have a valid, unique id and be KeySize bytes.
func NewKeyring(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no payload key")
	}
	r := &Keyring{active: keys[0].ID, keys: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, err
		}
		if _, dup := r.keys[k.ID]; dup {
			return nil, fmt.Errorf("key id %q appears twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		r.keys[k.ID] = aead
		r.ids = append(r.ids, k.ID)
	}
	return r, nil
}

// NewCodec is New(NewKeyring(keys)).
func NewCodec(keys []Key) (*Codec, error) {
	r, err := NewKeyring(keys)
	if err != nil {
		return nil, err
	}
	return New(r), nil
}
