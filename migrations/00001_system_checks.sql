-- +goose Up
-- A system check proves the whole path: API -> Temporal workflow -> activity -> Postgres.
-- The activity writes one row per check; the primary key makes a retried activity a no-op.
CREATE TABLE system_checks (
    id              uuid PRIMARY KEY,
    workflow_id     text        NOT NULL UNIQUE,
    run_id          text        NOT NULL,
    note            text        NOT NULL DEFAULT '',
    requested_at    timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    worker_identity text        NOT NULL DEFAULT ''
);

CREATE INDEX system_checks_requested_at_idx ON system_checks (requested_at DESC);

-- +goose Down
DROP TABLE system_checks;
