-- +goose Up
-- Operator signals (issue 12): an operator can pause or resume a watch, or
-- have a node rescanned, by sending its workflow a Temporal signal with
-- {"operator": "<name>", "reason": "<text>"}. Every such signal, accepted or
-- refused, is recorded here; the actor is "operator:<name>", never a staff
-- member. Patient data never reaches these rows (the workflows that take
-- operator signals hold none).
CREATE TABLE operator_signals (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    workflow_id text NOT NULL,
    -- kind is the workflow's VigilKind (watch, node); subject_id its watch
    -- or node id.
    kind        text NOT NULL,
    subject_id  text NOT NULL,
    signal      text NOT NULL,
    -- "operator:<name>"; empty when the payload named no valid operator.
    actor       text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '',
    outcome     text NOT NULL CHECK (outcome IN ('accepted', 'refused', 'failed')),
    -- Why a signal was refused (or failed); empty when accepted.
    refusal     text NOT NULL DEFAULT '',
    -- Set by the workflow so a retried write records the signal once.
    event_key   text NOT NULL UNIQUE
);
CREATE INDEX operator_signals_subject ON operator_signals (kind, subject_id, id DESC);

-- Who last paused or resumed a watch (a staff id through the API, or
-- operator:<name> through a signal), when, and why.
ALTER TABLE watches
    ADD COLUMN state_changed_by text NOT NULL DEFAULT '',
    ADD COLUMN state_changed_at timestamptz,
    ADD COLUMN state_reason     text NOT NULL DEFAULT '';

-- Who asked for a scan: empty for the schedule's fleet scans,
-- operator:<name> for a node rescan.
ALTER TABLE broker_scans ADD COLUMN requested_by text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE broker_scans DROP COLUMN requested_by;
ALTER TABLE watches DROP COLUMN state_reason, DROP COLUMN state_changed_at, DROP COLUMN state_changed_by;
DROP TABLE operator_signals;
