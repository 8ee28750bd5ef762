-- +goose Up
-- Capacity watches: each watch is a long-running workflow (watch:<id>) that
-- polls the service directory; Postgres keeps the watches, every snapshot,
-- each service's current status and the history of changes.

CREATE TABLE watches (
    id               uuid PRIMARY KEY,
    kind             text    NOT NULL CHECK (kind IN ('service', 'search')),
    -- kind = service
    service_id       text    NOT NULL DEFAULT '',
    -- kind = search
    postcode         text    NOT NULL DEFAULT '',
    distance_miles   integer NOT NULL DEFAULT 0,
    service_types    text[]  NOT NULL DEFAULT '{}',
    results_limit    integer NOT NULL DEFAULT 0,
    gp               text    NOT NULL DEFAULT '',
    search_role      text    NOT NULL DEFAULT '',
    description      text    NOT NULL DEFAULT '',
    interval_seconds integer NOT NULL DEFAULT 300 CHECK (interval_seconds >= 60),
    -- Notification targets.
    slack_channel    text    NOT NULL DEFAULT '',
    sms_numbers      text[]  NOT NULL DEFAULT '{}',
    -- Hysteresis: consecutive polls required before a recovery is announced.
    recovery_polls   integer NOT NULL DEFAULT 1 CHECK (recovery_polls BETWEEN 1 AND 20),
    state            text    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'degraded', 'deleted')),
    created_by       text    NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'service' AND service_id <> '') OR (kind = 'search' AND postcode <> '' AND cardinality(service_types) >= 1))
);

-- One row per service per poll, written in batches. Retention (default 30
-- days) is enforced by a Temporal Schedule.
CREATE TABLE snapshots (
    id         bigserial PRIMARY KEY,
    watch_id   uuid NOT NULL,
    poll_id    text NOT NULL,
    service_id text NOT NULL,
    polled_at  timestamptz NOT NULL,
    name       text NOT NULL DEFAULT '',
    type       text NOT NULL DEFAULT '',
    postcode   text NOT NULL DEFAULT '',
    region     text NOT NULL DEFAULT '',
    easting    integer,
    northing   integer,
    capacity   text NOT NULL DEFAULT '',
    rag        text NOT NULL DEFAULT '',
    updated_by text NOT NULL DEFAULT '',
    updated_at timestamptz,
    -- A retried poll activity writes the same poll_id: a no-op.
    UNIQUE (poll_id, service_id)
);
CREATE INDEX snapshots_polled_at ON snapshots (polled_at);
CREATE INDEX snapshots_service ON snapshots (service_id, polled_at DESC);

-- The current status of every monitored service.
CREATE TABLE service_statuses (
    service_id   text PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    type         text NOT NULL DEFAULT '',
    postcode     text NOT NULL DEFAULT '',
    region       text NOT NULL DEFAULT '',
    easting      integer,
    northing     integer,
    capacity     text NOT NULL DEFAULT '',
    rag          text NOT NULL DEFAULT '',
    updated_by   text NOT NULL DEFAULT '',
    updated_at   timestamptz,
    last_seen_at timestamptz NOT NULL,
    watch_id     uuid
);
CREATE INDEX service_statuses_capacity ON service_statuses (capacity);

-- The history of status changes, as announced (or, for robot resets and
-- first sightings, silently recorded).
CREATE TABLE status_changes (
    id                bigserial PRIMARY KEY,
    watch_id          uuid NOT NULL,
    service_id        text NOT NULL,
    name              text NOT NULL DEFAULT '',
    type              text NOT NULL DEFAULT '',
    region            text NOT NULL DEFAULT '',
    previous_capacity text NOT NULL DEFAULT '',
    previous_rag      text NOT NULL DEFAULT '',
    capacity          text NOT NULL DEFAULT '',
    rag               text NOT NULL DEFAULT '',
    -- kind: change, robot_reset, disappeared, first_sighting, degraded, recovered_source
    kind              text NOT NULL,
    changed_by        text NOT NULL DEFAULT '',
    changed_at        timestamptz,
    detected_at       timestamptz NOT NULL,
    poll_id           text NOT NULL,
    notified          boolean NOT NULL DEFAULT false,
    UNIQUE (poll_id, service_id, kind)
);
CREATE INDEX status_changes_detected ON status_changes (detected_at DESC, id DESC);
CREATE INDEX status_changes_service ON status_changes (service_id, detected_at DESC);
CREATE INDEX status_changes_watch ON status_changes (watch_id, detected_at DESC);

-- +goose Down
DROP TABLE status_changes;
DROP TABLE service_statuses;
DROP TABLE snapshots;
DROP TABLE watches;
