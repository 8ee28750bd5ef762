//go:build integration

package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
)

// forgerySecret is the stack's HMAC secret (startStackWith). The tests
// that sign with it play an attacker who has it only to prove that the
// claim checks, not the signature, refuse those tokens.
const forgerySecret = "integration-test-secret-0123456789abcdef"

// jwtParts splits a token into its decoded header and claims.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, dst))
	}
	return header, claims
}

// jwtSegment encodes one JSON segment.
func jwtSegment(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// jwtHMAC signs header.claims with HMAC over h (sha256.New, ...) and key.
func jwtHMAC(t *testing.T, header, claims map[string]any, h func() hash.Hash, key string) string {
	t.Helper()
	input := jwtSegment(t, header) + "." + jwtSegment(t, claims)
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// withClaims copies claims with edits applied (a nil value deletes).
func withClaims(claims map[string]any, edits map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range edits {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// keepSignature replaces a token's claims but keeps its signature, as an
// attacker without the key would.
func keepSignature(t *testing.T, token string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	return parts[0] + "." + jwtSegment(t, claims) + "." + parts[2]
}

// protectedRoutes are the routes each forged token is tried on.
var protectedRoutes = []string{"/v1/me", "/v1/incidents"}

// requireAccepted checks the control: token is accepted on every route.
func requireAccepted(t *testing.T, s *stack, token string) {
	t.Helper()
	for _, path := range protectedRoutes {
		require.Equal(t, http.StatusOK, s.call(t, "GET", path, token, "", nil).StatusCode, path)
	}
}

// requireRefused checks that token is refused 401 on every route, with the
// API's error body.
func requireRefused(t *testing.T, s *stack, token string) {
	t.Helper()
	for _, path := range protectedRoutes {
		var e api.ErrorBody
		resp := s.call(t, "GET", path, token, "", &e)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s: %+v", path, e)
		require.Equal(t, api.CodeUnauthorized, e.Error.Code)
		require.Equal(t, `Bearer realm="vigil"`, resp.Header.Get("WWW-Authenticate"))
	}
}

// login signs a demo staff member in and returns both tokens.
func forgeryLogin(t *testing.T, s *stack, login string) api.TokenResponse {
	t.Helper()
	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/login", "", `{"login":"`+login+`","password":"`+demoPassword+`"}`, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return tok
}

// TestSecurity_Forgery_AlgorithmAndSignature: against the real stack, every
// variant of a valid access token whose algorithm or signature is not the
// server's own is refused 401 on protected routes.
func TestSecurity_Forgery_AlgorithmAndSignature(t *testing.T) {
	s := startStack(t)
	tok := forgeryLogin(t, s, "n01")
	requireAccepted(t, s, tok.AccessToken)
	header, claims := jwtParts(t, tok.AccessToken)
	require.Equal(t, auth.AlgHS512, header["alg"])
	// Control: the test's own signing reproduces a token the server
	// accepts, so the refusals below are the server's checks at work.
	requireAccepted(t, s, jwtHMAC(t, header, claims, sha512.New, forgerySecret))

	parts := strings.Split(tok.AccessToken, ".")
	other := forgeryLogin(t, s, "a01")
	otherParts := strings.Split(other.AccessToken, ".")
	none := map[string]any{"alg": "none", "typ": "JWT"}
	for _, tc := range []struct{ name, token string }{
		{"alg none, no signature", jwtSegment(t, none) + "." + parts[1] + "."},
		{"alg none, original signature", jwtSegment(t, none) + "." + parts[1] + "." + parts[2]},
		{"alg None", jwtSegment(t, map[string]any{"alg": "None", "typ": "JWT"}) + "." + parts[1] + "."},
		{"alg HS256 with the same secret", jwtHMAC(t, map[string]any{"alg": "HS256", "typ": "JWT"}, claims, sha256.New, forgerySecret)},
		{"alg HS384 with the same secret", jwtHMAC(t, map[string]any{"alg": "HS384", "typ": "JWT"}, claims, sha512.New384, forgerySecret)},
		{"alg RS256 header, HMAC body", jwtHMAC(t, map[string]any{"alg": "RS256", "typ": "JWT"}, claims, sha256.New, forgerySecret)},
		{"alg RS256 header, HS512 body", jwtHMAC(t, map[string]any{"alg": "RS256", "typ": "JWT"}, claims, sha512.New, forgerySecret)},
		{"wrong key", jwtHMAC(t, header, claims, sha512.New, "another-secret-of-at-least-32-bytes!!")},
		{"empty key", jwtHMAC(t, header, claims, sha512.New, "")},
		{"truncated signature", tok.AccessToken[:len(tok.AccessToken)-4]},
		{"empty signature", parts[0] + "." + parts[1] + "."},
		{"signature of another token", parts[0] + "." + parts[1] + "." + otherParts[2]},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!!" + parts[2][3:]},
		{"extra segment", tok.AccessToken + ".e30"},
		{"extra empty segment", tok.AccessToken + "."},
		{"two segments", parts[0] + "." + parts[1]},
		{"header only", parts[0]},
		{"empty token", ""},
		{"whitespace in the token", parts[0] + ". " + parts[1] + "." + parts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token == "" {
				requireRefused(t, s, " ")
				return
			}
			requireRefused(t, s, tc.token)
		})
	}
}

// TestSecurity_Forgery_EditedClaims: claims edited under the original
// signature are refused, and so are validly signed tokens whose claims the
// server refuses (expired, issued in the future, foreign issuer, no or an
// unknown session, the refresh type), and a refresh token presented as an
// access token.
func TestSecurity_Forgery_EditedClaims(t *testing.T) {
	s := startStack(t)
	tok := forgeryLogin(t, s, "n01")
	requireAccepted(t, s, tok.AccessToken)
	header, claims := jwtParts(t, tok.AccessToken)
	require.NotEmpty(t, claims["sid"], "staff tokens carry their session")

	// Validly signed tokens with the same claims but other times or issuer.
	signed := func(issuer string, now time.Time, ttl time.Duration) string {
		signer, err := auth.NewSigner(auth.SignerConfig{Issuer: issuer, HMACSecret: []byte(forgerySecret), Now: func() time.Time { return now }})
		require.NoError(t, err)
		c := auth.Claims{
			Subject: claims["sub"].(string), SubjectType: auth.SubjectStaff, Access: claims["access"].(string),
			SessionID: claims["sid"].(string), TokenType: auth.TokenAccess,
		}
		if role, ok := claims["role"].(string); ok {
			c.Role = role
		}
		token, _, err := signer.Issue(c, ttl)
		require.NoError(t, err)
		return token
	}
	// Control: the same construction at the right time and issuer works.
	requireAccepted(t, s, signed("vigil", time.Now(), 10*time.Minute))

	cases := []struct{ name, token string }{
		{"access raised to admin", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"access": auth.AccessAdmin}))},
		{"subject changed", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"sub": "a01"}))},
		{"subject type changed", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"sub_type": auth.SubjectSystem, "access": nil, "scopes": []string{"*"}}))},
		{"session removed", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"sid": nil}))},
		{"expiry extended", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()}))},
		{"type edited to refresh", keepSignature(t, tok.AccessToken, withClaims(claims, map[string]any{"typ": auth.TokenRefresh}))},
		{"type refresh, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"typ": auth.TokenRefresh}), sha512.New, forgerySecret)},
		{"type removed, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"typ": nil}), sha512.New, forgerySecret)},
		{"refresh token used as access token", tok.RefreshToken},
		{"expired", signed("vigil", time.Now().Add(-2*time.Hour), 15*time.Minute)},
		{"issued in the future", signed("vigil", time.Now().Add(time.Hour), 15*time.Minute)},
		{"foreign issuer", signed("evil", time.Now(), 10*time.Minute)},
		{"issuer removed, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"iss": nil}), sha512.New, forgerySecret)},
		{"expiry removed, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"exp": nil}), sha512.New, forgerySecret)},
		{"session removed, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"sid": nil}), sha512.New, forgerySecret)},
		{"unknown session, re-signed", jwtHMAC(t, header, withClaims(claims, map[string]any{"sid": "00000000-0000-0000-0000-000000000000"}), sha512.New, forgerySecret)},
	}
	// A refresh token that is itself a JWT is also tried with its type
	// edited to access under its own signature.
	if strings.Count(tok.RefreshToken, ".") == 2 {
		_, refreshClaims := jwtParts(t, tok.RefreshToken)
		cases = append(cases, struct{ name, token string }{"refresh token edited to access",
			keepSignature(t, tok.RefreshToken, withClaims(refreshClaims, map[string]any{"typ": auth.TokenAccess}))})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { requireRefused(t, s, tc.token) })
	}
}
