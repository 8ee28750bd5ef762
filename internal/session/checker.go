package session

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// DefaultCheckTTL is how long a Checker trusts what it read about a
// session: a revocation in another API process takes effect within it; one
// in this process at once (Forget).
const DefaultCheckTTL = 2 * time.Second

// Rights are what a session's holder may do, as they are now.
type Rights struct {
	// Live is false when the session was revoked or ended, or its staff
	// account was removed or deactivated; Reason says which.
	Live   bool
	Reason string
	// Access and Role are a staff member's current access level and role
	// (empty for other subjects): they replace whatever the token says.
	Access string
	Role   string
}

// Checker answers, for each request, whether a token's session is still
// live and what its holder may do now. It caches each answer for TTL.
type Checker struct {
	DB *sqlx.DB
	// TTL defaults to DefaultCheckTTL.
	TTL time.Duration
	// Now defaults to time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedRights
}

type cachedRights struct {
	rights      Rights
	secretHash  []byte
	subjectType string
	subjectID   string
	at          time.Time
}

// maxCached bounds the cache; past it, entries older than the TTL are
// swept, and if that is not enough the cache starts afresh.
const maxCached = 50_000

// Check returns the rights of the holder of a token of subject
// (subjectType, subjectID) in session sid.
func (c *Checker) Check(ctx context.Context, sid, subjectType, subjectID string) (Rights, error) {
	e, err := c.entry(ctx, sid)
	if err != nil {
		return Rights{}, err
	}
	if e.rights.Live && (e.subjectType != subjectType || e.subjectID != subjectID) {
		return Rights{Reason: "the session belongs to someone else"}, nil
	}
	return e.rights, nil
}

// CheckCookie returns the subject and rights of a console session cookie
// ("<sid>.<secret>"). A malformed cookie or a wrong secret is not live.
func (c *Checker) CheckCookie(ctx context.Context, cookie string) (sid, subjectType, subjectID string, r Rights, err error) {
	sid, secret, ok := SplitCookie(cookie)
	if !ok {
		return "", "", "", Rights{Reason: "no session"}, nil
	}
	e, err := c.entry(ctx, sid)
	if err != nil {
		return "", "", "", Rights{}, err
	}
	if len(e.secretHash) == 0 || subtle.ConstantTimeCompare(e.secretHash, hashToken(secret)) != 1 {
		return "", "", "", Rights{Reason: "no session"}, nil
	}
	return sid, e.subjectType, e.subjectID, e.rights, nil
}

func (c *Checker) entry(ctx context.Context, sid string) (cachedRights, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[sid]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= c.ttl() {
		var err error
		e, err = c.load(ctx, sid)
		if err != nil {
			return cachedRights{}, err
		}
		e.at = now
		c.mu.Lock()
		if c.cache == nil {
			c.cache = map[string]cachedRights{}
		}
		if len(c.cache) >= maxCached {
			c.sweepLocked(now)
		}
		c.cache[sid] = e
		c.mu.Unlock()
	}
	return e, nil
}

func (c *Checker) load(ctx context.Context, sid string) (cachedRights, error) {
	if _, err := uuid.Parse(sid); err != nil {
		return cachedRights{rights: Rights{Reason: "unknown session"}}, nil
	}
	var row struct {
		SubjectType  string         `db:"subject_type"`
		SubjectID    string         `db:"subject_id"`
		Revoked      bool           `db:"revoked"`
		RevokeReason string         `db:"revoke_reason"`
		Ended        bool           `db:"ended"`
		StaffFound   bool           `db:"staff_found"`
		SecretHash   []byte         `db:"secret_hash"`
		Access       sql.NullString `db:"access"`
		Role         sql.NullString `db:"role"`
		Active       sql.NullBool   `db:"active"`
	}
	err := c.DB.GetContext(ctx, &row, `
		SELECT s.subject_type, s.subject_id, s.revoked_at IS NOT NULL AS revoked, s.revoke_reason,
		       s.expires_at <= now() AS ended, s.secret_hash, st.id IS NOT NULL AS staff_found, st.access, st.role, st.active
		FROM sessions s LEFT JOIN staff st ON s.subject_type = 'staff' AND st.id = s.subject_id
		WHERE s.id = $1`, sid)
	if errors.Is(err, sql.ErrNoRows) {
		return cachedRights{rights: Rights{Reason: "unknown session"}}, nil
	}
	if err != nil {
		return cachedRights{}, fmt.Errorf("check session: %w", err)
	}
	e := cachedRights{subjectType: row.SubjectType, subjectID: row.SubjectID, secretHash: row.SecretHash}
	switch {
	case row.Revoked:
		e.rights.Reason = "the session was ended (" + row.RevokeReason + ")"
	case row.Ended:
		e.rights.Reason = "the session has ended; sign in again"
	case row.SubjectType == "staff" && !row.StaffFound:
		e.rights.Reason = "the account no longer exists"
	case row.SubjectType == "staff" && !row.Active.Bool:
		e.rights.Reason = "the account is deactivated"
	default:
		e.rights = Rights{Live: true, Access: row.Access.String, Role: row.Role.String}
	}
	return e, nil
}

// Forget drops what the checker knows of session sid, so the next request
// reads it afresh (call it after revoking in this process).
func (c *Checker) Forget(sid string) {
	c.mu.Lock()
	delete(c.cache, sid)
	c.mu.Unlock()
}

// ForgetSubject drops every cached session of a subject (after its rights
// changed or its sessions were revoked in this process).
func (c *Checker) ForgetSubject(subjectType, subjectID string) {
	c.mu.Lock()
	for sid, e := range c.cache {
		if e.subjectType == subjectType && e.subjectID == subjectID {
			delete(c.cache, sid)
		}
	}
	c.mu.Unlock()
}

func (c *Checker) sweepLocked(now time.Time) {
	for sid, e := range c.cache {
		if now.Sub(e.at) >= c.ttl() {
			delete(c.cache, sid)
		}
	}
	if len(c.cache) >= maxCached {
		c.cache = map[string]cachedRights{}
	}
}

func (c *Checker) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCheckTTL
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
