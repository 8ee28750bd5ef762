// Package session owns Vigil's revocable sessions: the sessions and
// refresh_tokens tables, single-use rotating refresh tokens with reuse
// detection, revocation, and the per-request check that a token's session
// and its holder's rights are still what they were (see Checker).
//
// A session is opened by a staff sign-in (API or console) or when an admin
// mints a system token. Access tokens carry its id (the sid claim). Refresh
// tokens are opaque random strings; only their SHA-256 is stored. Each may
// be used once: using it returns a new one, and presenting a used one again
// means it was copied, so the whole session (its "family") is revoked.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/database"
)

// RefreshTokenPrefix starts every refresh token, so a leaked one is easy to
// recognise (and to tell from an access token).
const RefreshTokenPrefix = "vr_"

// Origins of a session.
const (
	OriginAPI         = "api"
	OriginConsole     = "ui"
	OriginSystemToken = "system-token"
)

// Revocation reasons stored in sessions.revoke_reason.
const (
	ReasonLogout         = "logout"
	ReasonLogoutAll      = "logout everywhere"
	ReasonRevoked        = "revoked"
	ReasonRefreshReused  = "refresh token reused"
	ReasonPasswordChange = "password changed"
	ReasonPasswordReset  = "password reset by an admin"
	ReasonAccessChanged  = "role, access or login changed"
	ReasonDeactivated    = "account deactivated"
	ReasonDeleted        = "account deleted"
)

var (
	// ErrInvalidRefresh is returned for a refresh token that is unknown,
	// malformed or expired.
	ErrInvalidRefresh = errors.New("refresh token invalid or expired")
	// ErrRefreshReused is returned when a refresh token that was already
	// used is presented again; its session has been revoked.
	ErrRefreshReused = errors.New("refresh token reused: session revoked")
	// ErrSessionEnded is returned when the refresh token is valid but its
	// session was revoked or has reached its absolute end.
	ErrSessionEnded = errors.New("session revoked or ended")
	// ErrNotFound is returned for an unknown session id.
	ErrNotFound = errors.New("session not found")
)

// Session is one row of sessions.
type Session struct {
	ID           string     `json:"id" db:"id"`
	SubjectType  string     `json:"subject_type" db:"subject_type"`
	SubjectID    string     `json:"subject_id" db:"subject_id"`
	Origin       string     `json:"origin" db:"origin"`
	CreatedAt    time.Time  `json:"created_at" db:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at" db:"expires_at"`
	LastSeenAt   time.Time  `json:"last_seen_at" db:"last_seen_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty" db:"revoked_at"`
	RevokeReason string     `json:"revoke_reason,omitempty" db:"revoke_reason"`
	ClientIP     string     `json:"client_ip" db:"client_ip"`
	UserAgent    string     `json:"user_agent" db:"user_agent"`
}

// Live reports whether the session is neither revoked nor past its end.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

const sessionColumns = `id, subject_type, subject_id, origin, created_at, expires_at, last_seen_at, revoked_at,
	revoke_reason, client_ip, user_agent`

// Store reads and writes sessions and refresh tokens.
type Store struct {
	DB *sqlx.DB
}

// Open describes a new session.
type Open struct {
	SubjectType, SubjectID, Origin string
	// Lifetime is the session's absolute lifetime; refreshing never extends
	// it.
	Lifetime time.Duration
	// WithRefresh issues a first refresh token (API sign-ins); system
	// tokens have none.
	WithRefresh bool
	// WithSecret issues the console's cookie secret (see ConsoleCookie).
	WithSecret bool
	ClientIP   string
	UserAgent  string
}

// Opened is a new session with its secrets, which exist only here: the
// database keeps their hashes.
type Opened struct {
	Session
	// Refresh is the first refresh token (Open.WithRefresh).
	Refresh string
	// Cookie is the console's session cookie value (Open.WithSecret).
	Cookie string
}

// Open starts a session with, as asked, its first refresh token or its
// console cookie.
func (st *Store) Open(ctx context.Context, o Open) (Opened, error) {
	var out Opened
	if o.Lifetime <= 0 {
		return out, fmt.Errorf("open session: lifetime %s is not positive", o.Lifetime)
	}
	id := uuid.NewString()
	var secretHash []byte
	if o.WithSecret {
		secret, err := newSecret("")
		if err != nil {
			return out, fmt.Errorf("open session: %w", err)
		}
		out.Cookie, secretHash = id+"."+secret, hashToken(secret)
	}
	err := st.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &out.Session, `
			INSERT INTO sessions (id, subject_type, subject_id, origin, expires_at, secret_hash, client_ip, user_agent)
			VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond', $6, $7, $8)
			RETURNING `+sessionColumns,
			id, o.SubjectType, o.SubjectID, o.Origin, o.Lifetime.Milliseconds(), secretHash,
			o.ClientIP, truncate(o.UserAgent, 256)); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		if !o.WithRefresh {
			return nil
		}
		var err error
		out.Refresh, err = insertRefresh(ctx, tx, out.ID, out.ExpiresAt)
		return err
	})
	if err != nil {
		return Opened{}, fmt.Errorf("open session: %w", err)
	}
	return out, nil
}

// SplitCookie splits a console cookie into its session id and secret; ok
// is false for a malformed one.
func SplitCookie(cookie string) (sid, secret string, ok bool) {
	sid, secret, ok = strings.Cut(cookie, ".")
	if !ok || len(sid) != 36 || secret == "" || len(secret) > 64 {
		return "", "", false
	}
	return sid, secret, true
}

// Rotate exchanges a refresh token for a new one in the same session. The
// presented token is used up. A token used before revokes its session and
// returns ErrRefreshReused (with the session, so the caller can audit it);
// an unknown or expired one returns ErrInvalidRefresh; a revoked or ended
// session ErrSessionEnded.
func (st *Store) Rotate(ctx context.Context, refresh string) (Session, string, error) {
	if !strings.HasPrefix(refresh, RefreshTokenPrefix) || len(refresh) > 128 {
		return Session{}, "", ErrInvalidRefresh
	}
	hash := hashToken(refresh)
	var sess Session
	var next string
	var reused bool
	err := st.inTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			SessionID string     `db:"session_id"`
			ExpiresAt time.Time  `db:"expires_at"`
			UsedAt    *time.Time `db:"used_at"`
		}
		// FOR UPDATE serialises two concurrent uses of the same token: the
		// second sees used_at set and is treated as reuse.
		err := tx.GetContext(ctx, &row, `SELECT session_id, expires_at, used_at FROM refresh_tokens
			WHERE token_hash = $1 FOR UPDATE`, hash)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidRefresh
		}
		if err != nil {
			return fmt.Errorf("look up refresh token: %w", err)
		}
		if err := tx.GetContext(ctx, &sess, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR UPDATE`, row.SessionID); err != nil {
			return fmt.Errorf("look up session: %w", err)
		}
		if row.UsedAt != nil {
			reused = true
			if sess.RevokedAt == nil {
				if err := revokeWhere(ctx, tx, `id = $2`, ReasonRefreshReused, sess.ID); err != nil {
					return err
				}
			}
			return nil
		}
		var now time.Time
		if err := tx.GetContext(ctx, &now, `SELECT now()`); err != nil {
			return fmt.Errorf("read clock: %w", err)
		}
		if !now.Before(row.ExpiresAt) {
			return ErrInvalidRefresh
		}
		if !sess.Live(now) {
			return ErrSessionEnded
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, hash); err != nil {
			return fmt.Errorf("use refresh token: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = now() WHERE id = $1`, sess.ID); err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		next, err = insertRefresh(ctx, tx, sess.ID, sess.ExpiresAt)
		return err
	})
	switch {
	case err != nil:
		if errors.Is(err, ErrInvalidRefresh) || errors.Is(err, ErrSessionEnded) {
			return sess, "", err
		}
		return Session{}, "", fmt.Errorf("rotate refresh token: %w", err)
	case reused:
		return sess, "", ErrRefreshReused
	}
	return sess, next, nil
}

// Get returns one session.
func (st *Store) Get(ctx context.Context, id string) (Session, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Session{}, ErrNotFound
	}
	return database.Get[Session](ctx, st.DB, ErrNotFound, "get session", `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id)
}

// List returns a subject's sessions that are live or ended within the last
// day, newest first.
func (st *Store) List(ctx context.Context, subjectType, subjectID string) ([]Session, error) {
	return database.Select[Session](ctx, st.DB, "list sessions", `SELECT `+sessionColumns+` FROM sessions
		WHERE subject_type = $1 AND subject_id = $2
		  AND COALESCE(revoked_at, expires_at) > now() - interval '1 day'
		ORDER BY created_at DESC LIMIT 200`, subjectType, subjectID)
}

// Revoke ends one session; revoking an ended session keeps its first reason.
// It reports whether the session was live.
func (st *Store) Revoke(ctx context.Context, id, reason string) (bool, error) {
	if _, err := uuid.Parse(id); err != nil {
		return false, ErrNotFound
	}
	res, err := st.DB.ExecContext(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = $2
		WHERE id = $1 AND revoked_at IS NULL`, id, reason)
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	return n > 0, nil
}

// RevokeSubject ends every live session of a subject, with db being the
// database or a transaction (so a password change and the revocation commit
// together). It returns how many sessions it ended.
func RevokeSubject(ctx context.Context, db sqlx.ExecerContext, subjectType, subjectID, reason string) (int64, error) {
	res, err := db.ExecContext(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = $3
		WHERE subject_type = $1 AND subject_id = $2 AND revoked_at IS NULL AND expires_at > now()`,
		subjectType, subjectID, reason)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s %s: %w", subjectType, subjectID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s %s: %w", subjectType, subjectID, err)
	}
	return n, nil
}

// RevokeSubject ends every live session of a subject.
func (st *Store) RevokeSubject(ctx context.Context, subjectType, subjectID, reason string) (int64, error) {
	return RevokeSubject(ctx, st.DB, subjectType, subjectID, reason)
}

// Prune deletes sessions that ended more than retention ago (their refresh
// tokens go with them).
func (st *Store) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	res, err := st.DB.ExecContext(ctx, `DELETE FROM sessions
		WHERE COALESCE(LEAST(revoked_at, expires_at), expires_at) < now() - $1 * interval '1 millisecond'`,
		retention.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func revokeWhere(ctx context.Context, tx *sqlx.Tx, where, reason string, args ...any) error {
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = now(), revoke_reason = $1
		WHERE revoked_at IS NULL AND `+where, append([]any{reason}, args...)...); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

func insertRefresh(ctx context.Context, tx *sqlx.Tx, sessionID string, expiresAt time.Time) (string, error) {
	token, err := newSecret(RefreshTokenPrefix)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		hashToken(token), sessionID, expiresAt); err != nil {
		return "", fmt.Errorf("insert refresh token: %w", err)
	}
	return token, nil
}

// newSecret returns prefix and 256 random bits.
func newSecret(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func (st *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return database.InTx(ctx, st.DB, fn)
}
