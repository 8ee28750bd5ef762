-- +goose Up
-- The escalation step an ASSIGNED incident has armed: the incident workflow
-- writes it with its projection (one row per incident, replaced when the
-- next step is armed, deleted in the same transaction as the
-- acknowledgement, claim or resolution). The worker's dispatcher pages it
-- when due_at comes, without waiting for a workflow task; the workflow's own
-- timer still runs the step later and finds it done. input is the step's
-- activities.PageStepInput. A dispatcher claims a row until claimed_until,
-- so a dispatcher killed mid-page leaves it to be claimed again.
CREATE TABLE escalation_schedule (
    incident_id   uuid PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    step          text NOT NULL,
    due_at        timestamptz NOT NULL,
    seq           integer NOT NULL,
    input         jsonb NOT NULL,
    claimed_until timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    done_at       timestamptz
);
CREATE INDEX escalation_schedule_due ON escalation_schedule (due_at) WHERE done_at IS NULL;

-- Whom each page step of an incident picked, first attempt wins: a second
-- run of the same step (the workflow's timer after the dispatcher, or a
-- retry) pages the same person.
CREATE TABLE incident_step_picks (
    incident_id uuid NOT NULL,
    step        text NOT NULL,
    recipient   text NOT NULL,
    role        text NOT NULL DEFAULT '',
    fallback    boolean NOT NULL DEFAULT false,
    reason      text NOT NULL DEFAULT '',
    picked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, step)
);

-- +goose Down
DROP TABLE incident_step_picks;
DROP TABLE escalation_schedule;
