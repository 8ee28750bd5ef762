package auth_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
)

const testIssuer = "https://vigil.test"

var (
	testHMACSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	otherHMACSecret = []byte("fedcba9876543210fedcba9876543210-other-secret")
	// t0 is a fixed instant for injected clocks, on a whole second.
	t0 = time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
)

// testRSAKey generates the 2048-bit test RSA key once per test binary.
var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := testRSAKey()
	require.NoError(t, err)
	return key
}

func pkcs1PEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func pkcs8PEM(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func publicPEM(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// fixedClock returns a clock that always reads at.
func fixedClock(at time.Time) func() time.Time {
	return func() time.Time { return at }
}

func newHSSigner(t testing.TB, now time.Time) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Issuer: testIssuer, HMACSecret: testHMACSecret, Now: fixedClock(now)})
	require.NoError(t, err)
	return s
}

func newRSSigner(t testing.TB, now time.Time) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: pkcs1PEM(rsaKey(t)), Now: fixedClock(now)})
	require.NoError(t, err)
	return s
}

func staffClaims(typ string) auth.Claims {
	return auth.Claims{
		Subject:     "staff-123",
		SubjectType: auth.SubjectStaff,
		Access:      auth.AccessCharge,
		Role:        "NURSE",
		Scopes:      []string{"alerts:read", "alerts:ack"},
		LocationIDs: []string{"loc-icu-1", "loc-icu-2"},
		TokenType:   typ,
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// payloadOf returns the base64url payload segment of a valid token.
func payloadOf(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	return parts[1]
}

func TestNewSigner(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)

	tests := []struct {
		name    string
		cfg     auth.SignerConfig
		wantAlg string
		wantErr error
	}{
		{name: "hmac", cfg: auth.SignerConfig{Issuer: testIssuer, HMACSecret: testHMACSecret}, wantAlg: "HS512"},
		{name: "hmac exactly 32 bytes", cfg: auth.SignerConfig{Issuer: testIssuer, HMACSecret: bytes.Repeat([]byte{7}, 32)}, wantAlg: "HS512"},
		{name: "rsa pkcs1", cfg: auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: pkcs1PEM(rsaKey(t))}, wantAlg: "RS256"},
		{name: "rsa pkcs8", cfg: auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: pkcs8PEM(t, rsaKey(t))}, wantAlg: "RS256"},
		{name: "rsa wins over hmac", cfg: auth.SignerConfig{Issuer: testIssuer, HMACSecret: testHMACSecret, RSAPrivateKeyPEM: pkcs1PEM(rsaKey(t))}, wantAlg: "RS256"},
		{name: "weak hmac secret", cfg: auth.SignerConfig{Issuer: testIssuer, HMACSecret: bytes.Repeat([]byte{7}, 31)}, wantErr: auth.ErrWeakSecret},
		{name: "no key at all", cfg: auth.SignerConfig{Issuer: testIssuer}, wantErr: auth.ErrWeakSecret},
		{name: "small rsa key", cfg: auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: pkcs1PEM(small)}, wantErr: auth.ErrWeakSecret},
		{name: "empty issuer", cfg: auth.SignerConfig{HMACSecret: testHMACSecret}, wantErr: auth.ErrInvalidSignerConfig},
		{name: "garbage pem", cfg: auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: []byte("not a pem")}, wantErr: auth.ErrInvalidSignerConfig},
		{name: "public key pem", cfg: auth.SignerConfig{Issuer: testIssuer, RSAPrivateKeyPEM: publicPEM(t, rsaKey(t))}, wantErr: auth.ErrInvalidSignerConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := auth.NewSigner(tt.cfg)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, s)
				if len(tt.cfg.HMACSecret) > 0 {
					require.NotContains(t, err.Error(), string(tt.cfg.HMACSecret), "errors must not echo the secret")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantAlg, s.Algorithm())
		})
	}
}

func TestSignerConfigAndSignerRedacted(t *testing.T) {
	t.Parallel()
	rsaPEM := pkcs1PEM(rsaKey(t))
	cfg := auth.SignerConfig{Issuer: testIssuer, HMACSecret: testHMACSecret, RSAPrivateKeyPEM: rsaPEM}
	signer := newHSSigner(t, t0)

	logged := func(v any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		return buf.String()
	}
	tests := []struct {
		name string
		out  string
	}{
		{name: "config %v", out: fmt.Sprintf("%v", cfg)},
		{name: "config %+v", out: fmt.Sprintf("%+v", cfg)},
		{name: "config %#v", out: fmt.Sprintf("%#v", cfg)},
		{name: "config slog", out: logged(cfg)},
		{name: "signer %v", out: fmt.Sprintf("%v", signer)},
		{name: "signer %+v", out: fmt.Sprintf("%+v", signer)},
		{name: "signer %#v", out: fmt.Sprintf("%#v", signer)},
		{name: "signer slog", out: logged(signer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NotContains(t, tt.out, string(testHMACSecret))
			require.NotContains(t, tt.out, "PRIVATE KEY")
			require.NotContains(t, tt.out, string(rsaPEM[40:80]))
			require.Contains(t, tt.out, testIssuer)
		})
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		signer  func(t *testing.T) *auth.Signer
		claims  auth.Claims
		ttl     time.Duration
		wantAlg string
	}{
		{name: "HS512 access", signer: func(t *testing.T) *auth.Signer { return newHSSigner(t, t0) }, claims: staffClaims(auth.TokenAccess), ttl: 15 * time.Minute, wantAlg: "HS512"},
		{name: "HS512 refresh", signer: func(t *testing.T) *auth.Signer { return newHSSigner(t, t0) }, claims: staffClaims(auth.TokenRefresh), ttl: 30 * 24 * time.Hour, wantAlg: "HS512"},
		{name: "RS256 access", signer: func(t *testing.T) *auth.Signer { return newRSSigner(t, t0) }, claims: staffClaims(auth.TokenAccess), ttl: 15 * time.Minute, wantAlg: "RS256"},
		{name: "RS256 refresh", signer: func(t *testing.T) *auth.Signer { return newRSSigner(t, t0) }, claims: staffClaims(auth.TokenRefresh), ttl: 30 * 24 * time.Hour, wantAlg: "RS256"},
		{
			name:    "HS512 device with sub-second clock",
			signer:  func(t *testing.T) *auth.Signer { return newHSSigner(t, t0.Add(400*time.Millisecond)) },
			claims:  auth.Claims{Subject: "dev-9", SubjectType: auth.SubjectDevice, TokenType: auth.TokenAccess},
			ttl:     time.Hour,
			wantAlg: "HS512",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.signer(t)
			in := tt.claims
			in.ID, in.Issuer = "caller-supplied", "https://evil.test" // overwritten by Issue

			token, exp, err := s.Issue(in, tt.ttl)
			require.NoError(t, err)
			require.True(t, exp.Equal(t0.Add(tt.ttl)), "exp %s", exp)

			header, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
			require.NoError(t, err)
			require.Contains(t, string(header), `"alg":"`+tt.wantAlg+`"`)

			got, err := s.Verify(token, tt.claims.TokenType)
			require.NoError(t, err)
			require.Regexp(t, `^[0-9a-f]{32}$`, got.ID)
			require.Equal(t, testIssuer, got.Issuer)
			require.True(t, got.IssuedAt.Equal(t0), "iat %s", got.IssuedAt)
			require.True(t, got.ExpiresAt.Equal(exp), "exp %s", got.ExpiresAt)

			want := tt.claims
			want.ID, want.Issuer, want.IssuedAt, want.ExpiresAt = got.ID, got.Issuer, got.IssuedAt, got.ExpiresAt
			require.Equal(t, want, *got)

			again, _, err := s.Issue(tt.claims, tt.ttl)
			require.NoError(t, err)
			other, err := s.Verify(again, tt.claims.TokenType)
			require.NoError(t, err)
			require.NotEqual(t, got.ID, other.ID, "jti must be unique")
		})
	}
}

func TestIssueRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	s := newHSSigner(t, t0)
	with := func(f func(c *auth.Claims)) auth.Claims {
		c := staffClaims(auth.TokenAccess)
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		claims auth.Claims
		ttl    time.Duration
	}{
		{name: "zero ttl", claims: staffClaims(auth.TokenAccess), ttl: 0},
		{name: "negative ttl", claims: staffClaims(auth.TokenAccess), ttl: -time.Minute},
		{name: "sub-second ttl", claims: staffClaims(auth.TokenAccess), ttl: 500 * time.Millisecond},
		{name: "missing subject", claims: with(func(c *auth.Claims) { c.Subject = "" }), ttl: time.Minute},
		{name: "missing subject type", claims: with(func(c *auth.Claims) { c.SubjectType = "" }), ttl: time.Minute},
		{name: "unknown subject type", claims: with(func(c *auth.Claims) { c.SubjectType = "robot" }), ttl: time.Minute},
		{name: "missing token type", claims: with(func(c *auth.Claims) { c.TokenType = "" }), ttl: time.Minute},
		{name: "unknown token type", claims: with(func(c *auth.Claims) { c.TokenType = "id" }), ttl: time.Minute},
		{name: "unknown access", claims: with(func(c *auth.Claims) { c.Access = "root" }), ttl: time.Minute},
		{name: "access on patient", claims: with(func(c *auth.Claims) { c.SubjectType = auth.SubjectPatient }), ttl: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token, exp, err := s.Issue(tt.claims, tt.ttl)
			require.ErrorIs(t, err, auth.ErrInvalidClaims)
			require.Empty(t, token)
			require.True(t, exp.IsZero())
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	hs := newHSSigner(t, t0)
	rs := newRSSigner(t, t0)

	issue := func(s *auth.Signer, c auth.Claims, ttl time.Duration) string {
		token, _, err := s.Issue(c, ttl)
		require.NoError(t, err)
		return token
	}
	hsAccess := issue(hs, staffClaims(auth.TokenAccess), 15*time.Minute)
	hsRefresh := issue(hs, staffClaims(auth.TokenRefresh), 24*time.Hour)
	rsAccess := issue(rs, staffClaims(auth.TokenAccess), 15*time.Minute)

	otherIssuer, err := auth.NewSigner(auth.SignerConfig{Issuer: "https://other.test", HMACSecret: testHMACSecret, Now: fixedClock(t0)})
	require.NoError(t, err)
	otherSecret, err := auth.NewSigner(auth.SignerConfig{Issuer: testIssuer, HMACSecret: otherHMACSecret, Now: fixedClock(t0)})
	require.NoError(t, err)
	future := newHSSigner(t, t0.Add(time.Hour))

	// handSigned signs arbitrary claims with the jwt library directly, the
	// way an attacker holding (or guessing) a key would.
	handSigned := func(method jwt.SigningMethod, key any, mutate func(jwt.MapClaims)) string {
		claims := jwt.MapClaims{
			"sub": "staff-123", "sub_type": "staff", "access": "admin", "typ": "access",
			"jti": "00112233445566778899aabbccddeeff", "iss": testIssuer,
			"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		}
		if mutate != nil {
			mutate(claims)
		}
		token, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return token
	}
	parts := strings.Split(hsAccess, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.Contains(t, string(payload), `"access":"charge"`)
	escalated := b64(strings.Replace(string(payload), `"access":"charge"`, `"access":"admin"`, 1))

	tests := []struct {
		name     string
		verifier *auth.Signer
		token    string
		wantType string
		wantErr  error
	}{
		{name: "control: valid HS512", verifier: hs, token: hsAccess, wantType: auth.TokenAccess},
		{name: "control: valid RS256", verifier: rs, token: rsAccess, wantType: auth.TokenAccess},
		{name: "control: within 5s leeway", verifier: newHSSigner(t, t0.Add(15*time.Minute+4*time.Second)), token: hsAccess, wantType: auth.TokenAccess},
		{name: "control: hand-signed with real key", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, nil), wantType: auth.TokenAccess},

		{name: "expired", verifier: newHSSigner(t, t0.Add(16*time.Minute)), token: hsAccess, wantType: auth.TokenAccess, wantErr: auth.ErrTokenExpired},
		{name: "expired beyond leeway", verifier: newHSSigner(t, t0.Add(15*time.Minute+6*time.Second)), token: hsAccess, wantType: auth.TokenAccess, wantErr: auth.ErrTokenExpired},
		{name: "expired RS256", verifier: newRSSigner(t, t0.Add(time.Hour)), token: rsAccess, wantType: auth.TokenAccess, wantErr: auth.ErrTokenExpired},
		{name: "expired and foreign issuer is invalid", verifier: newHSSigner(t, t0.Add(time.Hour)), token: issue(otherIssuer, staffClaims(auth.TokenAccess), time.Minute), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "expired with bad signature is invalid", verifier: newHSSigner(t, t0.Add(time.Hour)), token: parts[0] + "." + parts[1] + "." + flip(parts[2]), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},

		{name: "refresh used as access", verifier: hs, token: hsRefresh, wantType: auth.TokenAccess, wantErr: auth.ErrWrongTokenType},
		{name: "access used as refresh", verifier: hs, token: hsAccess, wantType: auth.TokenRefresh, wantErr: auth.ErrWrongTokenType},
		{name: "unsupported wanted type", verifier: hs, token: hsAccess, wantType: "", wantErr: auth.ErrWrongTokenType},

		{name: "tampered signature", verifier: hs, token: parts[0] + "." + parts[1] + "." + flip(parts[2]), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "tampered payload", verifier: hs, token: parts[0] + "." + escalated + "." + parts[2], wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "signature stripped", verifier: hs, token: parts[0] + "." + parts[1] + ".", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "other secret", verifier: hs, token: issue(otherSecret, staffClaims(auth.TokenAccess), time.Minute), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "other issuer", verifier: hs, token: issue(otherIssuer, staffClaims(auth.TokenAccess), time.Minute), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "issued in the future", verifier: hs, token: issue(future, staffClaims(auth.TokenAccess), 2*time.Hour), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},

		{name: "alg none", verifier: hs, token: b64(`{"alg":"none","typ":"JWT"}`) + "." + payloadOf(t, hsAccess) + ".", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "alg None mixed case", verifier: hs, token: b64(`{"alg":"None","typ":"JWT"}`) + "." + payloadOf(t, hsAccess) + ".", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "alg none on RS256 signer", verifier: rs, token: b64(`{"alg":"none","typ":"JWT"}`) + "." + payloadOf(t, rsAccess) + ".", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "alg none with original signature", verifier: hs, token: b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "HS256 with real secret", verifier: hs, token: handSigned(jwt.SigningMethodHS256, testHMACSecret, nil), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},

		{name: "HS512 token on RS256 signer", verifier: rs, token: hsAccess, wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "RS256 token on HS512 signer", verifier: hs, token: rsAccess, wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "alg confusion HS256 keyed with RSA public key PEM", verifier: rs, token: handSigned(jwt.SigningMethodHS256, publicPEM(t, rsaKey(t)), nil), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "alg confusion HS512 keyed with RSA public key PEM", verifier: rs, token: handSigned(jwt.SigningMethodHS512, publicPEM(t, rsaKey(t)), nil), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},

		{name: "missing exp", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "exp") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "missing iss", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "iss") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "missing jti", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "jti") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "missing sub", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "sub") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "missing sub_type", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "sub_type") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "missing typ", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { delete(c, "typ") }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "access level on device", verifier: hs, token: handSigned(jwt.SigningMethodHS512, testHMACSecret, func(c jwt.MapClaims) { c["sub_type"] = "device" }), wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},

		{name: "empty", verifier: hs, token: "", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "garbage", verifier: hs, token: "not.a.jwt", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
		{name: "api key", verifier: hs, token: "vk_abcdefghijklmnopqrstuvwxyz234567abcdef", wantType: auth.TokenAccess, wantErr: auth.ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.verifier.Verify(tt.token, tt.wantType)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, "staff-123", got.Subject)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Nil(t, got)
			for _, sentinel := range []error{auth.ErrTokenExpired, auth.ErrTokenInvalid, auth.ErrWrongTokenType} {
				if !errors.Is(sentinel, tt.wantErr) {
					require.NotErrorIs(t, err, sentinel, "errors must map to exactly one sentinel")
				}
			}
			if tt.token != "" {
				require.NotContains(t, err.Error(), tt.token, "errors must not echo the token")
			}
		})
	}
}

func TestClaimsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims auth.Claims
		want   string
	}{
		{
			name: "full",
			claims: auth.Claims{
				Subject: "staff-1", SubjectType: auth.SubjectStaff, Access: auth.AccessAdmin, Role: "NURSE",
				Scopes: []string{"a"}, LocationIDs: []string{"l1"}, TokenType: auth.TokenAccess,
				ID: "abc", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), Issuer: testIssuer,
			},
			want: fmt.Sprintf(`{"sub_type":"staff","access":"admin","role":"NURSE","scopes":["a"],"location_ids":["l1"],"typ":"access",`+
				`"iss":"https://vigil.test","sub":"staff-1","exp":%d,"iat":%d,"jti":"abc"}`, t0.Unix()+60, t0.Unix()),
		},
		{
			name:   "minimal",
			claims: auth.Claims{Subject: "dev-1", SubjectType: auth.SubjectDevice, TokenType: auth.TokenRefresh},
			want:   `{"sub_type":"device","typ":"refresh","sub":"dev-1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.claims)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(b))

			var back auth.Claims
			require.NoError(t, json.Unmarshal(b, &back))
			require.True(t, back.IssuedAt.Equal(tt.claims.IssuedAt))
			require.True(t, back.ExpiresAt.Equal(tt.claims.ExpiresAt))
			back.IssuedAt, back.ExpiresAt = tt.claims.IssuedAt, tt.claims.ExpiresAt
			require.Equal(t, tt.claims, back)
		})
	}
}

func BenchmarkVerifyHS512(b *testing.B) {
	s := newHSSigner(b, t0)
	token, _, err := s.Issue(staffClaims(auth.TokenAccess), 15*time.Minute)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(token, auth.TokenAccess); err != nil {
			b.Fatal(err)
		}
	}
}
