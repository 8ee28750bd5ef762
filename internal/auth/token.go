package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Subject types, carried in the sub_type claim.
const (
	// SubjectStaff identifies a hospital staff member logged in to Vigil.
	SubjectStaff = "staff"
	// SubjectPatient identifies a patient.
	SubjectPatient = "patient"
	// SubjectDevice identifies a bedside or wearable device.
	SubjectDevice = "device"
	// SubjectClinician identifies an external clinician.
	SubjectClinician = "clinician"
	// SubjectSystem identifies an internal service or integration.
	SubjectSystem = "system"
)

// Staff access levels, carried in the access claim. Tokens for subjects
// other than SubjectStaff carry no access level.
const (
	// AccessStaff is the access level of regular staff members.
	AccessStaff = "staff"
	// AccessCharge is the access level of charge nurses.
	AccessCharge = "charge"
	// AccessAdmin is the access level of administrators.
	AccessAdmin = "admin"
)

// Token types, carried in the typ claim.
const (
	// TokenAccess marks a short-lived token presented on API requests.
	TokenAccess = "access"
	// TokenRefresh marks a longer-lived token that is only exchanged for a
	// new access token.
	TokenRefresh = "refresh"
)

// Algorithms used by a Signer, as returned by Signer.Algorithm.
const (
	// AlgHS512 is HMAC with SHA-512, used when only an HMAC secret is
	// configured.
	AlgHS512 = "HS512"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, used when an RSA private
	// key is configured.
	AlgRS256 = "RS256"
)

// MinHMACSecretLength is the minimum length, in bytes, of
// SignerConfig.HMACSecret.
const MinHMACSecretLength = 32

// MinRSAKeyBits is the minimum size, in bits, of SignerConfig's RSA key.
const MinRSAKeyBits = 2048

// verifyLeeway is the clock skew tolerated when checking exp and iat.
const verifyLeeway = 5 * time.Second

var (
	// ErrWeakSecret is returned by NewSigner when the HMAC secret is shorter
	// than MinHMACSecretLength bytes or the RSA key is smaller than
	// MinRSAKeyBits bits.
	ErrWeakSecret = errors.New("signing secret is too weak")
	// ErrInvalidSignerConfig is returned by NewSigner when the configuration
	// is unusable, for example when the issuer is empty or the RSA key PEM
	// cannot be parsed.
	ErrInvalidSignerConfig = errors.New("invalid signer configuration")
	// ErrInvalidClaims is returned by Signer.Issue when the claims or the
	// TTL are missing or invalid.
	ErrInvalidClaims = errors.New("invalid token claims")
	// ErrTokenExpired is returned by Signer.Verify when an otherwise valid
	// token has expired. Clients should refresh or log in again.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenInvalid is returned by Signer.Verify for every rejected token
	// that is neither expired nor of the wrong type: malformed tokens, bad
	// signatures, unexpected algorithms, foreign issuers, missing claims.
	ErrTokenInvalid = errors.New("token invalid")
	// ErrWrongTokenType is returned by Signer.Verify when a valid token's
	// typ claim differs from the expected type, such as a refresh token
	// presented as an access token.
	ErrWrongTokenType = errors.New("wrong token type")
)

// Claims is the content of a Vigil token. Its JSON encoding is exactly the
// token payload: registered claims use their JWT names and timestamps are
// encoded as JWT NumericDate (seconds since the Unix epoch).
type Claims struct {
	// Subject is the ID of the authenticated principal.
	Subject string `json:"sub,omitempty"`
	// SubjectType is one of SubjectStaff, SubjectPatient, SubjectDevice,
	// SubjectClinician or SubjectSystem.
	SubjectType string `json:"sub_type"`
	// Access is the staff access level (AccessStaff, AccessCharge or
	// AccessAdmin); it is empty for subjects that are not staff.
	Access string `json:"access,omitempty"`
	// Role is the clinical role, such as NURSE.
	Role string `json:"role,omitempty"`
	// Scopes lists the permissions granted to the token.
	Scopes []string `json:"scopes,omitempty"`
	// LocationIDs lists the locations the subject may act on.
	LocationIDs []string `json:"location_ids,omitempty"`
	// SessionID (sid) is the revocable session the token belongs to: every
	// staff token and every system token minted through the API has one, and
	// each request checks that the session is still live.
	SessionID string `json:"sid,omitempty"`
	// DeviceID (dev) is the ward device a clinician token was minted
	// through; the token stops working when that device is deactivated.
	DeviceID string `json:"dev,omitempty"`
	// TokenType is TokenAccess or TokenRefresh.
	TokenType string `json:"typ"`
	// ID is the unique token ID (jti), set by Signer.Issue. Callers use it
	// to rotate and revoke refresh tokens.
	ID string `json:"jti,omitempty"`
	// IssuedAt is the issue time (iat), set by Signer.Issue.
	IssuedAt time.Time `json:"iat,omitzero"`
	// ExpiresAt is the expiry time (exp), set by Signer.Issue.
	ExpiresAt time.Time `json:"exp,omitzero"`
	// Issuer is the issuer (iss), set by Signer.Issue from
	// SignerConfig.Issuer.
	Issuer string `json:"iss,omitempty"`
}

// claimsJSON is the JWT payload of Claims: its fields, with the
// timestamps as NumericDate (fields of the outer struct take the place of
// the embedded ones of the same name). It is the jwt.Claims that Issue
// signs and Verify parses, so that the jwt library validates exp, iat and
// iss; Vigil sets neither nbf nor aud.
type claimsJSON struct {
	*claimFields
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`
}

// claimFields is Claims without its methods.
type claimFields Claims

// wire returns c's JWT payload.
func (c *Claims) wire() claimsJSON {
	return claimsJSON{(*claimFields)(c), numericDate(c.IssuedAt), numericDate(c.ExpiresAt)}
}

// setTimes copies the decoded timestamps into the claims.
func (w *claimsJSON) setTimes() {
	w.claimFields.IssuedAt, w.claimFields.ExpiresAt = fromNumericDate(w.IssuedAt), fromNumericDate(w.ExpiresAt)
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func fromNumericDate(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// MarshalJSON encodes c as a JWT payload, with NumericDate timestamps.
func (c Claims) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.wire())
	if err != nil {
		return nil, fmt.Errorf("auth: marshal claims: %w", err)
	}
	return b, nil
}

// UnmarshalJSON decodes a JWT payload into c.
func (c *Claims) UnmarshalJSON(data []byte) error {
	*c = Claims{}
	w := claimsJSON{claimFields: (*claimFields)(c)}
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("auth: unmarshal claims: %w", err)
	}
	w.setTimes()
	return nil
}

var _ jwt.Claims = claimsJSON{}

// GetExpirationTime returns exp.
func (w claimsJSON) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt, nil }

// GetIssuedAt returns iat.
func (w claimsJSON) GetIssuedAt() (*jwt.NumericDate, error) { return w.IssuedAt, nil }

// GetNotBefore returns nil: Vigil's tokens carry no nbf.
func (w claimsJSON) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer returns iss.
func (w claimsJSON) GetIssuer() (string, error) { return w.Issuer, nil }

// GetSubject returns sub.
func (w claimsJSON) GetSubject() (string, error) { return w.Subject, nil }

// GetAudience returns nil: Vigil's tokens carry no aud.
func (w claimsJSON) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }

// validate checks the Vigil-specific claims shared by Issue and Verify.
func (c *Claims) validate() error {
	switch {
	case c.Subject == "":
		return errors.New("missing subject")
	case c.TokenType != TokenAccess && c.TokenType != TokenRefresh:
		return fmt.Errorf("unknown token type %q", c.TokenType)
	}
	switch c.SubjectType {
	case SubjectStaff:
		switch c.Access {
		case "", AccessStaff, AccessCharge, AccessAdmin:
		default:
			return fmt.Errorf("unknown access level %q", c.Access)
		}
	case SubjectPatient, SubjectDevice, SubjectClinician, SubjectSystem:
		if c.Access != "" {
			return fmt.Errorf("access level %q set for subject type %q", c.Access, c.SubjectType)
		}
	default:
		return fmt.Errorf("unknown subject type %q", c.SubjectType)
	}
	return nil
}

// SignerConfig configures NewSigner. It holds secrets; printing or logging
// it shows only the issuer and which key kinds are set.
type SignerConfig struct {
	// Issuer is the iss claim written into and required from tokens. It
	// must not be empty.
	Issuer string
	// HMACSecret is the HS512 key, at least MinHMACSecretLength bytes. It is
	// ignored when RSAPrivateKeyPEM is set.
	HMACSecret []byte
	// RSAPrivateKeyPEM, when set, is a PEM-encoded PKCS #1 or PKCS #8 RSA
	// private key of at least MinRSAKeyBits bits; tokens are then signed with
	// RS256 and verified with its public key.
	RSAPrivateKeyPEM []byte
	// Now returns the current time. It defaults to time.Now; tests inject a
	// fixed clock.
	Now func() time.Time
}

// String returns a description of c with the key material redacted.
func (c SignerConfig) String() string {
	return fmt.Sprintf("auth.SignerConfig{Issuer: %q, HMACSecret: %s, RSAPrivateKeyPEM: %s}",
		c.Issuer, redactedBytes(c.HMACSecret), redactedBytes(c.RSAPrivateKeyPEM))
}

// GoString returns the same redacted description as String, for %#v.
func (c SignerConfig) GoString() string { return c.String() }

// LogValue returns a slog group with the key material redacted.
func (c SignerConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.String("hmac_secret", redactedBytes(c.HMACSecret)),
		slog.String("rsa_private_key_pem", redactedBytes(c.RSAPrivateKeyPEM)),
	)
}

func redactedBytes(b []byte) string {
	if len(b) == 0 {
		return "[unset]"
	}
	return redacted
}

// Signer issues and verifies Vigil tokens with a single key and algorithm.
// A Signer is safe for concurrent use. Printing or logging it never shows
// the key.
type Signer struct {
	issuer    string
	method    jwt.SigningMethod
	signKey   any // []byte for HS512, *rsa.PrivateKey for RS256
	verifyKey any // []byte for HS512, *rsa.PublicKey for RS256
	now       func() time.Time
	parser    *jwt.Parser
}

// NewSigner returns a Signer for cfg. It uses RS256 when
// cfg.RSAPrivateKeyPEM is set and HS512 with cfg.HMACSecret otherwise. It
// returns an error wrapping ErrWeakSecret when the key is too short and
// ErrInvalidSignerConfig when the issuer is empty or the key cannot be
// parsed.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("auth: new signer: empty issuer: %w", ErrInvalidSignerConfig)
	}
	s := &Signer{issuer: cfg.Issuer, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if len(cfg.RSAPrivateKeyPEM) > 0 {
		key, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.RSAPrivateKeyPEM)
		if err != nil {
			// The parse error describes the encoding problem, never the key.
			return nil, fmt.Errorf("auth: new signer: parse rsa private key: %w: %w", ErrInvalidSignerConfig, err)
		}
		if bits := key.N.BitLen(); bits < MinRSAKeyBits {
			return nil, fmt.Errorf("auth: new signer: rsa key has %d bits, want at least %d: %w", bits, MinRSAKeyBits, ErrWeakSecret)
		}
		s.method, s.signKey, s.verifyKey = jwt.SigningMethodRS256, key, &key.PublicKey
	} else {
		if n := len(cfg.HMACSecret); n < MinHMACSecretLength {
			return nil, fmt.Errorf("auth: new signer: hmac secret has %d bytes, want at least %d: %w", n, MinHMACSecretLength, ErrWeakSecret)
		}
		secret := slices.Clone(cfg.HMACSecret)
		s.method, s.signKey, s.verifyKey = jwt.SigningMethodHS512, secret, secret
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{s.method.Alg()}),
		jwt.WithIssuer(s.issuer),
		jwt.WithLeeway(verifyLeeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	return s, nil
}

// Algorithm returns the JWT algorithm the Signer uses, AlgHS512 or AlgRS256.
func (s *Signer) Algorithm() string { return s.method.Alg() }

// String returns a description of s with the key redacted.
func (s *Signer) String() string {
	return fmt.Sprintf("auth.Signer{Issuer: %q, Algorithm: %s, Key: %s}", s.issuer, s.method.Alg(), redacted)
}

// GoString returns the same redacted description as String, for %#v.
func (s *Signer) GoString() string { return s.String() }

// LogValue returns a slog group with the issuer and algorithm only.
func (s *Signer) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", s.issuer),
		slog.String("algorithm", s.method.Alg()),
	)
}

// Issue signs a token carrying c that expires after ttl. It overwrites
// c.ID with a random 128-bit hex token ID and sets c.IssuedAt, c.ExpiresAt
// (both truncated to whole seconds, the precision of JWT timestamps) and
// c.Issuer. It returns the signed token and its expiry time, or an error
// wrapping ErrInvalidClaims when ttl is not positive or c lacks Subject,
// SubjectType or TokenType or has an unknown value in them or in Access.
func (s *Signer) Issue(c Claims, ttl time.Duration) (token string, expiresAt time.Time, err error) {
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("auth: issue token: ttl %s is not positive: %w", ttl, ErrInvalidClaims)
	}
	if err := c.validate(); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: issue token: %w: %w", ErrInvalidClaims, err)
	}
	id, err := newTokenID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: issue token: %w", err)
	}
	now := s.now().Truncate(time.Second)
	c.ID = id
	c.Issuer = s.issuer
	c.IssuedAt = now
	c.ExpiresAt = now.Add(ttl).Truncate(time.Second)
	if !c.ExpiresAt.After(now) {
		return "", time.Time{}, fmt.Errorf("auth: issue token: ttl %s is shorter than one second: %w", ttl, ErrInvalidClaims)
	}
	signed, err := jwt.NewWithClaims(s.method, c.wire()).SignedString(s.signKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: issue token: sign: %w", err)
	}
	return signed, c.ExpiresAt, nil
}

// Verify parses token and returns its claims if the token is signed by this
// Signer's key with this Signer's algorithm, was issued by this Signer's
// issuer, has not expired (allowing 5 s of clock skew), carries all required
// claims and its typ claim equals wantType (TokenAccess or TokenRefresh).
//
// The returned error wraps ErrTokenExpired for an expired token,
// ErrWrongTokenType when the type does not match, and ErrTokenInvalid in
// every other case, including "none" and algorithm-confusion tokens.
func (s *Signer) Verify(token string, wantType string) (*Claims, error) {
	if wantType != TokenAccess && wantType != TokenRefresh {
		return nil, fmt.Errorf("auth: verify token: unsupported wanted type %q: %w", wantType, ErrWrongTokenType)
	}
	var c Claims
	w := claimsJSON{claimFields: (*claimFields)(&c)}
	if _, err := s.parser.ParseWithClaims(token, &w, s.keyFunc); err != nil {
		if onlyExpired(err) {
			return nil, fmt.Errorf("auth: verify token: %w", ErrTokenExpired)
		}
		return nil, fmt.Errorf("auth: verify token: %w: %w", ErrTokenInvalid, err)
	}
	w.setTimes()
	if c.ID == "" || c.IssuedAt.IsZero() {
		return nil, fmt.Errorf("auth: verify token: missing jti or iat: %w", ErrTokenInvalid)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("auth: verify token: %w: %w", ErrTokenInvalid, err)
	}
	if c.TokenType != wantType {
		return nil, fmt.Errorf("auth: verify token: got %q token, want %q: %w", c.TokenType, wantType, ErrWrongTokenType)
	}
	return &c, nil
}

// keyFunc returns the verification key after checking, independently of the
// parser's algorithm allow-list, that the token's algorithm is exactly the
// configured one. This is what defeats the alg=none and HMAC-with-RSA-
// public-key (algorithm confusion) attacks.
func (s *Signer) keyFunc(t *jwt.Token) (any, error) {
	if t.Method == nil || t.Method.Alg() != s.method.Alg() {
		return nil, errors.New("unexpected signing algorithm")
	}
	switch s.verifyKey.(type) {
	case []byte:
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, errors.New("unexpected signing method")
		}
	case *rsa.PublicKey:
		if _, ok := t.Method.(*jwt.SigningMethodRSA); !ok {
			return nil, errors.New("unexpected signing method")
		}
	}
	return s.verifyKey, nil
}

// onlyExpired reports whether err is a claims validation error whose only
// cause is expiry, so that a token with a valid signature but, say, a
// foreign issuer is reported as invalid rather than expired.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenMalformed,
		jwt.ErrTokenUnverifiable,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenNotValidYet,
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidSubject,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

// newTokenID returns a random 128-bit token ID in hex.
func newTokenID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
