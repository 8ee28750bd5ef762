package payloadcodec_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/internal/payloadcodec"
)

func key(t testing.TB, id string) payloadcodec.Key {
	t.Helper()
	k, err := payloadcodec.NewKey(id)
	require.NoError(t, err)
	return k
}

func codec(t testing.TB, keys ...payloadcodec.Key) *payloadcodec.Codec {
	t.Helper()
	c, err := payloadcodec.NewCodec(keys)
	require.NoError(t, err)
	return c
}

// patient is a value shaped like an incident input, with data that must
// not be readable in Temporal.
type patient struct {
	PatientID string
	Room      string
	Note      string
}

var secretValue = patient{PatientID: "MRN-SECRET-4711", Room: "ICU-BED-17", Note: "allergic to penicillin"}

func TestCodec_RoundTrip(t *testing.T) {
	c := codec(t, key(t, "k1"))
	plain, err := converter.GetDefaultDataConverter().ToPayloads(secretValue, "second", 42, nil)
	require.NoError(t, err)

	enc, err := c.Encode(plain.Payloads)
	require.NoError(t, err)
	require.Len(t, enc, 4)
	for i, p := range enc {
		require.Equal(t, payloadcodec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
		require.Equal(t, "k1", string(p.Metadata[payloadcodec.MetadataKeyID]))
		require.Len(t, p.Metadata, 2, "the original metadata (json/plain) is encrypted too")
		raw, err := proto.Marshal(p)
		require.NoError(t, err)
		for _, clear := range []string{"MRN-SECRET-4711", "ICU-BED-17", "penicillin", "json/plain"} {
			require.NotContains(t, string(raw), clear, "payload %d", i)
		}
	}
	// The inputs are left alone.
	require.Equal(t, "json/plain", string(plain.Payloads[0].Metadata[converter.MetadataEncoding]))

	dec, err := c.Decode(enc)
	require.NoError(t, err)
	for i := range dec {
		require.True(t, proto.Equal(plain.Payloads[i], dec[i]), "payload %d", i)
	}

	// Through a client's data converter, values come back as they went in.
	dc := c.DataConverter()
	p, err := dc.ToPayload(secretValue)
	require.NoError(t, err)
	require.Equal(t, payloadcodec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	var back patient
	require.NoError(t, dc.FromPayload(p, &back))
	require.Equal(t, secretValue, back)
}

func TestCodec_RandomNoncePerPayload(t *testing.T) {
	c := codec(t, key(t, "k1"))
	p, err := converter.GetDefaultDataConverter().ToPayload(secretValue)
	require.NoError(t, err)
	a, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	b, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.NotEqual(t, a[0].Data, b[0].Data, "the same value encrypts differently each time")
	require.NotEqual(t, a[0].Data[:12], b[0].Data[:12])
}

func TestCodec_Rotation(t *testing.T) {
	k1, k2 := key(t, "k1"), key(t, "k2")
	old := codec(t, k1)
	rotated := codec(t, k2, k1) // k2 active, k1 decrypt-only
	require.Equal(t, "k2", rotated.ActiveKeyID())
	require.Equal(t, []string{"k2", "k1"}, rotated.KeyIDs())

	p, err := converter.GetDefaultDataConverter().ToPayload(secretValue)
	require.NoError(t, err)
	underOld, err := old.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)

	// The old key still decrypts what it wrote...
	dec, err := rotated.Decode(underOld)
	require.NoError(t, err)
	require.True(t, proto.Equal(p, dec[0]))

	// ...while new payloads are written with the new key, which the old
	// codec does not know.
	underNew, err := rotated.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.Equal(t, "k2", string(underNew[0].Metadata[payloadcodec.MetadataKeyID]))
	_, err = old.Decode(underNew)
	require.ErrorIs(t, err, payloadcodec.ErrUnknownKey)
	require.Contains(t, err.Error(), `"k2"`)

	// Mixed batches (a history spanning the rotation) decode in one call.
	dec, err = rotated.Decode([]*commonpb.Payload{underOld[0], underNew[0], p})
	require.NoError(t, err)
	for _, d := range dec {
		require.True(t, proto.Equal(p, d))
	}
}

func TestCodec_TamperDetection(t *testing.T) {
	k1 := key(t, "k1")
	c := codec(t, k1)
	p, err := converter.GetDefaultDataConverter().ToPayload(secretValue)
	require.NoError(t, err)
	enc, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	good := enc[0]

	mutate := func(f func(p *commonpb.Payload)) *commonpb.Payload {
		q := proto.Clone(good).(*commonpb.Payload)
		f(q)
		return q
	}
	other := key(t, "k1") // same id, different secret
	tests := []struct {
		name  string
		codec *payloadcodec.Codec
		p     *commonpb.Payload
		want  error
	}{
		{"flipped ciphertext bit", c, mutate(func(p *commonpb.Payload) { p.Data[20] ^= 1 }), payloadcodec.ErrTampered},
		{"flipped nonce bit", c, mutate(func(p *commonpb.Payload) { p.Data[0] ^= 1 }), payloadcodec.ErrTampered},
		{"flipped tag bit", c, mutate(func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 }), payloadcodec.ErrTampered},
		{"truncated", c, mutate(func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-5] }), payloadcodec.ErrTampered},
		{"shorter than a nonce and tag", c, mutate(func(p *commonpb.Payload) { p.Data = p.Data[:20] }), payloadcodec.ErrTampered},
		{"empty", c, mutate(func(p *commonpb.Payload) { p.Data = nil }), payloadcodec.ErrTampered},
		{"unknown key id", c, mutate(func(p *commonpb.Payload) { p.Metadata[payloadcodec.MetadataKeyID] = []byte("k9") }), payloadcodec.ErrUnknownKey},
		{"no key id", c, mutate(func(p *commonpb.Payload) { delete(p.Metadata, payloadcodec.MetadataKeyID) }), payloadcodec.ErrUnknownKey},
		{"same id, another secret", codec(t, other), good, payloadcodec.ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.codec.Decode([]*commonpb.Payload{tt.p})
			require.ErrorIs(t, err, tt.want)
			require.Same(t, tt.p, out[0], "a failed decode returns its input")
			require.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(k1.Secret))
		})
	}
	// Through the data converter the error reaches the caller.
	var back patient
	err = c.DataConverter().FromPayload(mutate(func(p *commonpb.Payload) { p.Data[20] ^= 1 }), &back)
	require.ErrorIs(t, err, payloadcodec.ErrTampered)
}

func TestCodec_PassesUnencryptedPayloadsThrough(t *testing.T) {
	c := codec(t, key(t, "k1"))
	dc := converter.GetDefaultDataConverter()
	var plain []*commonpb.Payload
	for _, v := range []any{secretValue, "text", []byte{1, 2, 3}, nil, 7} {
		p, err := dc.ToPayload(v)
		require.NoError(t, err)
		plain = append(plain, p)
	}
	// A payload of some other codec (zlib) is not ours to touch either.
	plain = append(plain, &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/zlib")}, Data: []byte("x")})
	out, err := c.Decode(plain)
	require.NoError(t, err)
	for i := range plain {
		require.Same(t, plain[i], out[i])
	}
	// A history written before the codec reads through the codec converter.
	var back patient
	require.NoError(t, c.DataConverter().FromPayload(plain[0], &back))
	require.Equal(t, secretValue, back)
}

func TestCodec_ConcurrentUse(t *testing.T) {
	c := codec(t, key(t, "k1"))
	p, err := converter.GetDefaultDataConverter().ToPayload(secretValue)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				enc, err := c.Encode([]*commonpb.Payload{p})
				if err != nil {
					t.Error(err)
					return
				}
				dec, err := c.Decode(enc)
				if err != nil || !proto.Equal(p, dec[0]) {
					t.Error("round trip failed", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestParseKeys(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{0xfb}, 32) // '+' and '/' in standard base64
	std := base64.StdEncoding.EncodeToString
	keys, err := payloadcodec.ParseKeys(" k2=" + std(k2) + " , k1=" + base64.RawURLEncoding.EncodeToString(k1) + ",")
	require.NoError(t, err)
	require.Equal(t, []payloadcodec.Key{{ID: "k2", Secret: k2}, {ID: "k1", Secret: k1}}, keys)
	require.Equal(t, "k2="+std(k2)+",k1="+std(k1), payloadcodec.FormatKeys(keys))
	require.Equal(t, "k2=[redacted]", keys[0].String())

	short := std(bytes.Repeat([]byte{7}, 16))
	bad := []struct {
		name, value, want string
	}{
		{"empty", " , ", "no key"},
		{"no id", "=" + std(k1), "key id"},
		{"no value", "k1=", "entry 1 must look like"},
		{"no equals", "k1", "entry 1 must look like"},
		{"bad id", "k 1=" + std(k1), "key id"},
		{"16 bytes (AES-128)", "k1=" + short, "must decode to 32 bytes, not 16"},
		{"not base64", "k1=not*base64!", "not base64"},
		{"duplicate id", "k1=" + std(k1) + ",k1=" + std(k2), `key id "k1" appears twice`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := payloadcodec.ParseKeys(tt.value)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), short)
			require.NotContains(t, err.Error(), std(k1))
			require.NotContains(t, err.Error(), std(k2))
		})
	}
	_, err = payloadcodec.NewKeyring(nil)
	require.Error(t, err)
	_, err = payloadcodec.NewKeyring([]payloadcodec.Key{{ID: "k1", Secret: k1[:16]}})
	require.ErrorContains(t, err, "must be 32 bytes")
	_, err = payloadcodec.NewKeyring([]payloadcodec.Key{{ID: "k1", Secret: k1}, {ID: "k1", Secret: k2}})
	require.ErrorContains(t, err, "twice")
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "payload-keys")
	keys, created, err := payloadcodec.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, keys, 1)
	require.Equal(t, payloadcodec.DevKeyID, keys[0].ID)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// A restart reads the same key, so what it wrote still decodes.
	again, created, err := payloadcodec.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, keys, again)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")

	require.NoError(t, os.WriteFile(path, []byte("dev=short\n"), 0o600))
	_, _, err = payloadcodec.LoadOrCreateKeyFile(path)
	require.ErrorContains(t, err, path)
	require.NotContains(t, err.Error(), "short\n")
}

func TestLoadOrCreateKeyFile_ConcurrentStartsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payload-keys")
	var wg sync.WaitGroup
	got := make([][]payloadcodec.Key, 8)
	for i := range got {
		wg.Go(func() {
			keys, _, err := payloadcodec.LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			got[i] = keys
		})
	}
	wg.Wait()
	for i := range got {
		require.Equal(t, got[0], got[i])
	}
}

// BenchmarkCodec encodes and decodes one payload of about 1 KB (an incident
// input's size), as a client does for each workflow input and activity
// result.
func BenchmarkCodec(b *testing.B) {
	c := codec(b, key(b, "k1"))
	v := struct {
		patient
		Detail string
	}{secretValue, strings.Repeat("observation ", 75)}
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(b, err)
	in := []*commonpb.Payload{p}
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(proto.Size(p)), "payload-bytes")
}
