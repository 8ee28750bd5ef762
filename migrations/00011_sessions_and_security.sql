-- +goose Up
-- Revocable sessions and the security audit (issue 10).
--
-- Every staff login (API or console), and every system token an admin
-- mints, opens a session.
-- Access tokens carry its id (sid) and are checked against it on every
-- request (through a cache of a few seconds), so a revoked session, a
-- removed or deactivated account, or a changed access level takes effect
-- within seconds, not when the token expires. Refresh tokens are opaque
-- random strings stored only as SHA-256 hashes; each is single-use, and
-- presenting a used one again (reuse: it was stolen or replayed) revokes its
-- whole session.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    -- What opened it: api (POST /v1/auth/login), ui (the sign-in form),
    -- system-token (POST /v1/auth/system-tokens).
    origin        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Absolute end: refreshing never extends a session past it.
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoke_reason text NOT NULL DEFAULT '',
    -- Console sessions: SHA-256 of the secret in the HttpOnly session
    -- cookie (the cookie is "<id>.<secret>"; it is not rotated, so parallel
    -- page loads cannot race each other).
    secret_hash   bytea,
    client_ip     text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_subject ON sessions (subject_type, subject_id, created_at DESC);

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Deactivated staff cannot sign in and their tokens stop working.
ALTER TABLE staff ADD COLUMN active boolean NOT NULL DEFAULT true;

-- The audit covers every security decision, not only activations.
ALTER TABLE auth_audit DROP CONSTRAINT auth_audit_event_check;
ALTER TABLE auth_audit ADD CONSTRAINT auth_audit_event_check CHECK (event IN (
    'activation_created', 'attempt_failed', 'locked', 'completed', 'expired', 'token_issued', 'device_updated',
    'login_refused', 'system_token_issued',
    'login', 'login_throttled', 'logout', 'session_revoked', 'refresh_reused', 'password_changed', 'password_reset',
    'staff_access_changed', 'source_action_refused', 'activation_recreated', 'device_code_locked', 'rate_limited'));
CREATE INDEX auth_audit_at ON auth_audit (at DESC);

-- +goose Down
DROP INDEX auth_audit_at;
ALTER TABLE auth_audit DROP CONSTRAINT auth_audit_event_check;
DELETE FROM auth_audit WHERE event NOT IN ('activation_created', 'attempt_failed', 'locked', 'completed', 'expired',
    'token_issued', 'device_updated', 'login_refused', 'system_token_issued');
ALTER TABLE auth_audit ADD CONSTRAINT auth_audit_event_check CHECK (event IN ('activation_created', 'attempt_failed',
    'locked', 'completed', 'expired', 'token_issued', 'device_updated', 'login_refused', 'system_token_issued'));
ALTER TABLE staff DROP COLUMN active;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
