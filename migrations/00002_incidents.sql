-- +goose Up
-- Clinical incidents: the reference catalogue (roles, alert types, escalation
-- policies), staff and on-call schedules, incidents with their audit trail,
-- and the notification outbox. Demo staff and rotations are not seeded here
-- (a migration must not create accounts with known passwords in production);
-- `vigil dev` seeds them.

-- Clinical roles staff hold and alerts are routed to. Exactly one role is the
-- failsafe: the last destination of every escalation.
CREATE TABLE staff_roles (
    role        text PRIMARY KEY CHECK (role ~ '^[A-Z][A-Z0-9_]{1,63}$'),
    description text    NOT NULL DEFAULT '',
    is_failsafe boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX staff_roles_one_failsafe ON staff_roles (is_failsafe) WHERE is_failsafe;

-- The alert catalogue: severity, category, whether it needs an immediate
-- response, and the roles to try, in order.
CREATE TABLE alert_types (
    alert_type                  text PRIMARY KEY CHECK (alert_type ~ '^[A-Z][A-Z0-9_]{1,63}$'),
    severity                    text    NOT NULL CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    category                    text    NOT NULL,
    description                 text    NOT NULL DEFAULT '',
    requires_immediate_response boolean NOT NULL,
    roles                       text[]  NOT NULL CHECK (cardinality(roles) >= 1),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Escalation policies by severity, overridable per alert type. steps is an
-- ordered JSON array of {"wait_seconds": n, "target": "next_in_role" |
-- "role" | "failsafe", "role"?: "ROLE"}: wait n seconds for an
-- acknowledgement, then page the target. start_reminder_seconds re-pages the
-- assignee of an acknowledged incident not started in that time.
CREATE TABLE escalation_policies (
    id                     text PRIMARY KEY,
    severity               text CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    alert_type             text REFERENCES alert_types (alert_type) ON DELETE CASCADE,
    steps                  jsonb   NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) >= 1),
    start_reminder_seconds integer NOT NULL DEFAULT 600 CHECK (start_reminder_seconds >= 60),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((severity IS NULL) <> (alert_type IS NULL))
);
CREATE UNIQUE INDEX escalation_policies_severity ON escalation_policies (severity) WHERE severity IS NOT NULL;
CREATE UNIQUE INDEX escalation_policies_alert_type ON escalation_policies (alert_type) WHERE alert_type IS NOT NULL;

-- Staff. access is what the person may do in Vigil (staff; charge may
-- reassign and act on others' incidents; admin edits reference data).
-- available=false marks someone unavailable even while on shift.
CREATE TABLE staff (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,32}$'),
    login         text NOT NULL UNIQUE,
    name          text NOT NULL,
    role          text NOT NULL REFERENCES staff_roles (role),
    access        text NOT NULL DEFAULT 'staff' CHECK (access IN ('staff', 'charge', 'admin')),
    email         text NOT NULL DEFAULT '',
    phone         text NOT NULL DEFAULT '',
    slack_user_id text NOT NULL DEFAULT '',
    password_hash text NOT NULL DEFAULT '',
    available     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Rotations: who works which shift for a role. Shifts are in the hospital's
-- time zone: DAY 08-16, EVENING 16-24, NIGHT 00-08. weekdays uses ISO
-- numbering (1 Monday .. 7 Sunday).
CREATE TABLE rotations (
    id       bigserial PRIMARY KEY,
    role     text NOT NULL REFERENCES staff_roles (role),
    staff_id text NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    shift    text NOT NULL CHECK (shift IN ('DAY', 'EVENING', 'NIGHT')),
    weekdays smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}' CHECK (weekdays <@ '{1,2,3,4,5,6,7}'::smallint[] AND cardinality(weekdays) >= 1),
    UNIQUE (role, staff_id, shift)
);

-- Overrides: a person covers a role for a time slot, whatever the rotation says.
CREATE TABLE oncall_overrides (
    id         bigserial PRIMARY KEY,
    role       text NOT NULL REFERENCES staff_roles (role),
    staff_id   text NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_overrides_role_time ON oncall_overrides (role, starts_at, ends_at);

-- API keys of alert sources, stored as SHA-256 of the secret; prefix is the
-- non-secret start shown in listings.
CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    name       text  NOT NULL,
    prefix     text  NOT NULL,
    key_hash   bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Incidents: the query-model projection of each incident workflow. A dedup
-- key has at most one open incident; the workflow (incident:<key hash>) is
-- the source of truth and writes this row on every transition.
CREATE TABLE incidents (
    id               uuid PRIMARY KEY,
    workflow_id      text NOT NULL,
    dedup_key_hash   text NOT NULL,
    alert_type       text NOT NULL REFERENCES alert_types (alert_type),
    severity         text NOT NULL,
    patient_id       text NOT NULL,
    room             text NOT NULL DEFAULT '',
    source           text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('OPEN', 'ASSIGNED', 'ACKNOWLEDGED', 'IN_PROGRESS', 'RESOLVED')),
    assigned_to      text REFERENCES staff (id),
    assigned_role    text NOT NULL DEFAULT '',
    alert_count      integer NOT NULL DEFAULT 1,
    escalation_step  integer NOT NULL DEFAULT 0,
    opened_at        timestamptz NOT NULL,
    assigned_at      timestamptz,
    first_paged_at   timestamptz,
    acknowledged_at  timestamptz,
    in_progress_at   timestamptz,
    resolved_at      timestamptz,
    resolved_by      text NOT NULL DEFAULT '',
    resolution_notes text NOT NULL DEFAULT '',
    last_alert_at    timestamptz NOT NULL,
    -- The audit sequence number of the state this row shows: projections
    -- that arrive out of order never overwrite a newer one.
    last_seq         integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (dedup_key_hash) WHERE status <> 'RESOLVED';
CREATE INDEX incidents_status_opened ON incidents (status, opened_at DESC);
CREATE INDEX incidents_assignee_status ON incidents (assigned_to, status);
CREATE INDEX incidents_opened ON incidents (opened_at DESC);

-- The audit trail: every transition and decision, with actor, workflow time
-- and the previous and new state. (incident_id, seq) makes a retried write a
-- no-op.
CREATE TABLE incident_events (
    incident_id uuid    NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    action      text    NOT NULL,
    actor_type  text    NOT NULL CHECK (actor_type IN ('system', 'staff', 'source')),
    actor_id    text    NOT NULL DEFAULT '',
    from_status text    NOT NULL DEFAULT '',
    to_status   text    NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    detail      jsonb   NOT NULL DEFAULT '{}',
    PRIMARY KEY (incident_id, seq)
);

-- The notification outbox: one row per (incident, step, recipient, channel).
-- The unique key is what makes a retried page a no-op: the sender claims the
-- row before calling the provider and records the outcome after.
CREATE TABLE notification_outbox (
    id           bigserial PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    step         text NOT NULL,
    recipient    text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('inapp', 'slack', 'sms')),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts     integer NOT NULL DEFAULT 0,
    provider_ref text NOT NULL DEFAULT '',
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (incident_id, step, recipient, channel)
);

-- In-app notifications for staff, pushed live over Server-Sent Events.
CREATE TABLE staff_notifications (
    id          bigserial PRIMARY KEY,
    staff_id    text NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    incident_id uuid REFERENCES incidents (id) ON DELETE CASCADE,
    outbox_id   bigint UNIQUE REFERENCES notification_outbox (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX staff_notifications_unread ON staff_notifications (staff_id, created_at DESC) WHERE read_at IS NULL;

INSERT INTO staff_roles (role, description, is_failsafe) VALUES
    ('NURSE', 'Ward nurse', false),
    ('EMERGENCY_DOCTOR', 'Emergency physician', false),
    ('CARDIOLOGIST', 'Cardiologist', false),
    ('NEUROLOGIST', 'Neurologist', false),
    ('SURGEON', 'Surgeon', false),
    ('OBSTETRICIAN', 'Obstetrician', false),
    ('BIOMEDICAL_ENGINEER', 'Biomedical engineer', false),
    ('PULMONOLOGIST', 'Pulmonologist', false),
    ('PSYCHIATRIST', 'Psychiatrist', false),
    ('ENDOCRINOLOGIST', 'Endocrinologist', false),
    ('INFECTIOUS_DISEASE', 'Infectious disease specialist', false),
    ('CHARGE_NURSE', 'Charge nurse: the failsafe destination of every escalation', true);

INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles) VALUES
    ('CARDIAC_ARREST', 'CRITICAL', 'CARDIAC', 'Cardiac arrest', true, '{EMERGENCY_DOCTOR,CARDIOLOGIST}'),
    ('CARDIAC_ABNORMAL', 'CRITICAL', 'CARDIAC', 'Abnormal cardiac rhythm', true, '{EMERGENCY_DOCTOR,CARDIOLOGIST}'),
    ('MYOCARDIAL_INFARCTION', 'CRITICAL', 'CARDIAC', 'Myocardial infarction', true, '{EMERGENCY_DOCTOR,CARDIOLOGIST}'),
    ('RESPIRATORY_DISTRESS', 'CRITICAL', 'RESPIRATORY', 'Respiratory distress', true, '{EMERGENCY_DOCTOR,PULMONOLOGIST,NURSE}'),
    ('O2_SATURATION_LOW', 'CRITICAL', 'RESPIRATORY', 'Low oxygen saturation', true, '{NURSE,EMERGENCY_DOCTOR,PULMONOLOGIST}'),
    ('APNEA_DETECTED', 'CRITICAL', 'RESPIRATORY', 'Apnoea detected', true, '{EMERGENCY_DOCTOR,NURSE}'),
    ('VENTILATOR_ALARM', 'CRITICAL', 'RESPIRATORY', 'Ventilator alarm', true, '{NURSE,EMERGENCY_DOCTOR,PULMONOLOGIST}'),
    ('STROKE_SUSPECTED', 'CRITICAL', 'NEUROLOGICAL', 'Suspected stroke', true, '{EMERGENCY_DOCTOR,NEUROLOGIST}'),
    ('INTRACRANIAL_PRESSURE_HIGH', 'CRITICAL', 'NEUROLOGICAL', 'High intracranial pressure', true, '{EMERGENCY_DOCTOR,NEUROLOGIST}'),
    ('HEMORRHAGE_MAJOR', 'CRITICAL', 'TRAUMA', 'Major haemorrhage', true, '{EMERGENCY_DOCTOR,SURGEON}'),
    ('TRAUMA_SEVERE', 'CRITICAL', 'TRAUMA', 'Severe trauma', true, '{EMERGENCY_DOCTOR,SURGEON}'),
    ('DIABETIC_KETOACIDOSIS', 'CRITICAL', 'METABOLIC', 'Diabetic ketoacidosis', true, '{EMERGENCY_DOCTOR,ENDOCRINOLOGIST}'),
    ('SEPSIS_SUSPECTED', 'CRITICAL', 'INFECTION', 'Suspected sepsis', true, '{EMERGENCY_DOCTOR,INFECTIOUS_DISEASE}'),
    ('FETAL_DISTRESS', 'CRITICAL', 'OBSTETRIC', 'Fetal distress', true, '{EMERGENCY_DOCTOR,OBSTETRICIAN}'),
    ('SUICIDE_RISK', 'CRITICAL', 'PSYCHIATRIC', 'Suicide risk', true, '{PSYCHIATRIST,NURSE,EMERGENCY_DOCTOR}'),
    ('SEIZURE_DETECTED', 'HIGH', 'NEUROLOGICAL', 'Seizure detected', true, '{NURSE,EMERGENCY_DOCTOR,NEUROLOGIST}'),
    ('HYPERTENSION_CRISIS', 'HIGH', 'BLOOD_PRESSURE', 'Hypertensive crisis', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('HYPOTENSION_SEVERE', 'HIGH', 'BLOOD_PRESSURE', 'Severe hypotension', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('HYPOGLYCEMIA_SEVERE', 'HIGH', 'METABOLIC', 'Severe hypoglycaemia', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('HYPERGLYCEMIA_SEVERE', 'HIGH', 'METABOLIC', 'Severe hyperglycaemia', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('MEDICATION_ERROR', 'HIGH', 'MEDICATION', 'Medication error', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('ADVERSE_REACTION', 'HIGH', 'MEDICATION', 'Adverse drug reaction', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('EQUIPMENT_MALFUNCTION', 'HIGH', 'EQUIPMENT', 'Equipment malfunction', true, '{BIOMEDICAL_ENGINEER,NURSE}'),
    ('FALL_DETECTED', 'HIGH', 'SAFETY', 'Patient fall detected', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('RESTRAINT_ALERT', 'HIGH', 'SAFETY', 'Restraint alert', true, '{NURSE,EMERGENCY_DOCTOR}'),
    ('LABOR_COMPLICATIONS', 'HIGH', 'OBSTETRIC', 'Labour complications', true, '{NURSE,OBSTETRICIAN}'),
    ('AGITATION_SEVERE', 'HIGH', 'PSYCHIATRIC', 'Severe agitation', true, '{NURSE,EMERGENCY_DOCTOR,PSYCHIATRIST}'),
    ('FEVER_HIGH', 'MEDIUM', 'INFECTION', 'High fever', false, '{NURSE}'),
    ('MEDICATION_DELAYED', 'MEDIUM', 'MEDICATION', 'Medication delayed', false, '{NURSE}'),
    ('IV_INFILTRATION', 'MEDIUM', 'MEDICATION', 'IV infiltration', false, '{NURSE}'),
    ('EQUIPMENT_LOW_BATTERY', 'MEDIUM', 'EQUIPMENT', 'Equipment battery low', false, '{BIOMEDICAL_ENGINEER,NURSE}'),
    ('BED_EXIT_UNAUTHORIZED', 'MEDIUM', 'SAFETY', 'Unauthorised bed exit', false, '{NURSE}');

-- Defaults: CRITICAL 2 then 5 minutes, HIGH 5 then 10, MEDIUM 15 then 30.
-- The first step pages the next person in the role, the last the failsafe.
INSERT INTO escalation_policies (id, severity, steps, start_reminder_seconds) VALUES
    ('severity:CRITICAL', 'CRITICAL', '[{"wait_seconds": 120, "target": "next_in_role"}, {"wait_seconds": 300, "target": "failsafe"}]', 300),
    ('severity:HIGH',     'HIGH',     '[{"wait_seconds": 300, "target": "next_in_role"}, {"wait_seconds": 600, "target": "failsafe"}]', 600),
    ('severity:MEDIUM',   'MEDIUM',   '[{"wait_seconds": 900, "target": "next_in_role"}, {"wait_seconds": 1800, "target": "failsafe"}]', 1800),
    ('severity:LOW',      'LOW',      '[{"wait_seconds": 1800, "target": "next_in_role"}, {"wait_seconds": 3600, "target": "failsafe"}]', 3600);

-- +goose Down
DROP TABLE staff_notifications;
DROP TABLE notification_outbox;
DROP TABLE incident_events;
DROP TABLE incidents;
DROP TABLE api_keys;
DROP TABLE oncall_overrides;
DROP TABLE rotations;
DROP TABLE staff;
DROP TABLE escalation_policies;
DROP TABLE alert_types;
DROP TABLE staff_roles;
