package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/payloadcodec"
)

// codecRouter is the API with a payload codec, on unreachable dependencies
// (sessions are taken as live: the real check runs in the integration
// test), and tokens of an admin and of a nurse.
func codecRouter(t *testing.T, uiURL string, withCodec bool) (http.Handler, *payloadcodec.Codec, map[string]string) {
	t.Helper()
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("codec-unit-test-secret-0123456789abcdef")})
	require.NoError(t, err)
	tokens := map[string]string{}
	for who, access := range map[string]string{"nurse": auth.AccessStaff, "charge": auth.AccessCharge, "admin": auth.AccessAdmin} {
		tok, _, err := signer.Issue(auth.Claims{Subject: strings.ToUpper(who[:1]) + "01", SubjectType: auth.SubjectStaff,
			Access: access, Role: "NURSE", SessionID: "unit-test-session", TokenType: auth.TokenAccess}, time.Hour)
		require.NoError(t, err)
		tokens[who] = tok
	}
	k, err := payloadcodec.NewKey("unit")
	require.NoError(t, err)
	codec, err := payloadcodec.NewCodec([]payloadcodec.Key{k})
	require.NoError(t, err)
	deps := unreachableDeps(t, nil)
	deps.Signer, deps.TemporalUIURL = signer, uiURL
	if withCodec {
		deps.PayloadCodec = codec
	}
	return api.NewRouter(deps), codec, tokens
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return string(b)
}

func TestCodecServer_CORS(t *testing.T) {
	router, _, _ := codecRouter(t, "http://127.0.0.1:8233", true)
	tests := []struct {
		name   string
		origin string
		allow  bool
	}{
		{"the web ui", "http://127.0.0.1:8233", true},
		{"the web ui by localhost", "http://localhost:8233", true},
		{"the web ui by ipv6 loopback", "http://[::1]:8233", true},
		{"another port", "http://127.0.0.1:9999", false},
		{"another scheme", "https://127.0.0.1:8233", false},
		{"another site", "https://evil.example", false},
		{"a lookalike", "http://127.0.0.1:8233.evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/codec/decode", "/codec/encode"} {
				w := do(t, router, "OPTIONS", path, "", "", "Origin", tt.origin,
					"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-namespace")
				if !tt.allow {
					require.Equal(t, http.StatusForbidden, w.Code)
					require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
					require.Equal(t, "Origin", decodeError(t, w).Field)
					continue
				}
				require.Equal(t, http.StatusNoContent, w.Code)
				h := w.Header()
				require.Equal(t, tt.origin, h.Get("Access-Control-Allow-Origin"), "the exact origin, never *")
				require.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
				require.Equal(t, "POST, OPTIONS", h.Get("Access-Control-Allow-Methods"))
				require.Equal(t, "Content-Type, X-Namespace, Authorization", h.Get("Access-Control-Allow-Headers"))
				require.Contains(t, h.Values("Vary"), "Origin")
			}
		})
	}
}

func TestCodecServer_RefusalsAndRoundTrip(t *testing.T) {
	const ui = "http://localhost:8233"
	router, codec, tokens := codecRouter(t, ui, true)
	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"PatientID": "MRN-UNIT-1"})
	require.NoError(t, err)
	enc, err := codec.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	body := payloadsJSON(t, enc[0])
	tampered := proto.Clone(enc[0]).(*commonpb.Payload)
	tampered.Data[15] ^= 1

	tests := []struct {
		name    string
		who     string
		path    string
		ct      string
		body    string
		headers []string
		status  int
		code    string
	}{
		{"no credentials", "", "/codec/decode", "application/json", body, nil, 401, api.CodeUnauthorized},
		{"a forged token", "forged", "/codec/decode", "application/json", body, nil, 401, api.CodeUnauthorized},
		{"a stale session cookie", "", "/codec/decode", "application/json", body, []string{"Cookie", "vigil_refresh=x.y"}, 401, api.CodeUnauthorized},
		{"a nurse", "nurse", "/codec/decode", "application/json", body, nil, 403, api.CodeForbidden},
		{"a charge nurse encodes", "charge", "/codec/encode", "application/json", body, nil, 403, api.CodeForbidden},
		{"another namespace", "admin", "/codec/decode", "application/json", body, []string{"X-Namespace", "other"}, 403, api.CodeForbidden},
		{"not json", "admin", "/codec/decode", "text/plain", body, nil, 415, api.CodeUnsupportedMedia},
		{"not payloads", "admin", "/codec/decode", "application/json", `{"payload": []}`, nil, 400, api.CodeInvalidJSON},
		{"tampered", "admin", "/codec/decode", "application/json", payloadsJSON(t, tampered), nil, 422, api.CodeInvalidField},
		{"too large", "admin", "/codec/decode", "application/json", `{"payloads":[{"data":"` + strings.Repeat("A", 8<<20) + `"}]}`, nil, 413, api.CodeBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := append([]string{"Origin", ui}, tt.headers...)
			if tt.who == "forged" {
				headers = append(headers, "Authorization", "Bearer eyJhbGciOiJIUzUxMiJ9.e30.forged")
			} else if tt.who != "" {
				headers = append(headers, "Authorization", "Bearer "+tokens[tt.who])
			}
			w := do(t, router, "POST", tt.path, tt.ct, tt.body, headers...)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			require.Equal(t, tt.code, decodeError(t, w).Code)
			require.NotContains(t, w.Body.String(), "MRN-UNIT-1")
			// The UI can read the refusal (and show it).
			require.Equal(t, ui, w.Header().Get("Access-Control-Allow-Origin"))
		})
	}

	// An admin decodes with the UI's headers; a clear payload passes through.
	w := do(t, router, "POST", "/codec/decode", "application/json", payloadsJSON(t, enc[0], plain),
		"Origin", ui, "X-Namespace", "default", "Authorization", "Bearer "+tokens["admin"])
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(w.Body.Bytes(), &out))
	require.Len(t, out.Payloads, 2)
	require.True(t, proto.Equal(plain, out.Payloads[0]))
	require.True(t, proto.Equal(plain, out.Payloads[1]))
}

// TestCodecServer_SpeaksTemporalsProtocol drives the codec server with the
// SDK's own client of the remote codec protocol, as tctl and the CLI do.
func TestCodecServer_SpeaksTemporalsProtocol(t *testing.T) {
	router, codec, tokens := codecRouter(t, "http://localhost:8233", true)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL + "/codec",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+tokens["admin"])
			return nil
		},
	})
	plain, err := converter.GetDefaultDataConverter().ToPayloads("MRN-UNIT-2", 17, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	require.NoError(t, err)

	enc, err := remote.Encode(plain.Payloads)
	require.NoError(t, err)
	for _, p := range enc {
		require.Equal(t, payloadcodec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
		require.NotContains(t, string(p.Data), "MRN-UNIT-2")
	}
	// The remote encoding is the local codec's, both ways.
	local, err := codec.Decode(enc)
	require.NoError(t, err)
	dec, err := remote.Decode(enc)
	require.NoError(t, err)
	for i := range plain.Payloads {
		require.True(t, proto.Equal(plain.Payloads[i], local[i]))
		require.True(t, proto.Equal(plain.Payloads[i], dec[i]))
	}
}

func TestCodecServer_WithoutCodecAnswers503(t *testing.T) {
	router, _, tokens := codecRouter(t, "http://localhost:8233", false)
	w := do(t, router, "POST", "/codec/decode", "application/json", `{"payloads":[]}`, "Authorization", "Bearer "+tokens["admin"])
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, api.CodeUnavailable, decodeError(t, w).Code)
}
