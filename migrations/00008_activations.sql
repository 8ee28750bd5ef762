-- +goose Up
-- Patient and device activations, ward devices, external clinicians and the
-- audit of everything that grants or refuses a token. No PIN, code or token
-- is ever stored in clear: codes are found by a keyed lookup digest
-- (HMAC-SHA256 under a server key) and checked against an argon2id hash with
-- a per-record salt.

-- Ward devices (bedside tablets and the like) that clinicians log in through.
CREATE TABLE devices (
    id                uuid PRIMARY KEY,
    location_id       text NOT NULL,
    description       text NOT NULL DEFAULT '',
    active            boolean NOT NULL DEFAULT true,
    -- Tokens issued up to this time (whole seconds) no longer work: set when
    -- the device is deactivated or moved to another location.
    tokens_revoked_at timestamptz,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_location ON devices (location_id, created_at);

-- One row per activation (workflow activation:<kind>:<subject id>). The API
-- inserts it; afterwards only the workflow's activity changes it.
CREATE TABLE activations (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('patient', 'device')),
    subject_id     text NOT NULL,
    workflow_id    text NOT NULL,
    code_digest    text NOT NULL,
    code_hash      text NOT NULL,
    code_salt      text NOT NULL,
    pin_salt       text NOT NULL DEFAULT '',
    auth_code_hash text NOT NULL DEFAULT '',
    auth_code_salt text NOT NULL DEFAULT '',
    state          text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'activated', 'redeemed', 'expired', 'locked')),
    attempts       integer NOT NULL DEFAULT 0,
    expires_at     timestamptz NOT NULL,
    activated_at   timestamptz,
    finished_at    timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- A live code finds exactly one activation; a subject has at most one live
-- activation.
CREATE UNIQUE INDEX activations_live_code ON activations (code_digest) WHERE state IN ('pending', 'activated');
CREATE UNIQUE INDEX activations_live_subject ON activations (kind, subject_id) WHERE state IN ('pending', 'activated');
CREATE INDEX activations_code ON activations (code_digest, created_at DESC);
CREATE INDEX activations_subject ON activations (kind, subject_id, created_at DESC);

-- External clinicians who log in through a ward device.
CREATE TABLE clinicians (
    clinician_id             text PRIMARY KEY,
    send_entry_identifier    text UNIQUE,
    login_active             boolean NOT NULL,
    groups                   text[] NOT NULL DEFAULT '{}',
    location_ids             text[] NOT NULL DEFAULT '{}',
    -- The contract ends at the end of this day in the hospital's zone.
    contract_expiry_eod_date date,
    created_by               text NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Who got (or was refused) what. Never holds a PIN, code or token.
CREATE TABLE auth_audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    event        text NOT NULL CHECK (event IN ('activation_created', 'attempt_failed', 'locked', 'completed',
        'expired', 'token_issued', 'device_updated', 'login_refused', 'system_token_issued')),
    subject_type text NOT NULL,
    subject_id   text NOT NULL,
    -- Who acted: a staff id, a device id, or empty for the workflow itself.
    actor        text NOT NULL DEFAULT '',
    reason       text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    client_ip    text NOT NULL DEFAULT '',
    -- Set by workflow activities so a retried write records the event once.
    event_key    text UNIQUE
);
CREATE INDEX auth_audit_subject ON auth_audit (subject_type, subject_id, id DESC);
CREATE INDEX auth_audit_event ON auth_audit (event, id DESC);

-- +goose Down
DROP TABLE auth_audit;
DROP TABLE clinicians;
DROP TABLE activations;
DROP TABLE devices;
