-- +goose Up
-- Broker node monitoring: a fleet scan (Temporal Schedule) polls the data
-- broker's admin API and signals one long-running workflow per node
-- (node:<id>). Postgres keeps each node's settings and contacts, its daily
-- import statistics, de-duplicated import errors, resource snapshots with a
-- change log, its status history and every e-mail sent about it.

-- One row per fleet scan.
CREATE TABLE broker_scans (
    scan_id     text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    nodes       integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT ''
);

-- Every node the broker has listed, with its current evaluated status.
CREATE TABLE broker_nodes (
    node_id          text PRIMARY KEY,
    client_dn        text NOT NULL DEFAULT '',
    first_seen       timestamptz NOT NULL DEFAULT now(),
    -- The last scan that listed the node and the time it was checked.
    last_scan_id     text NOT NULL DEFAULT '',
    last_checked     timestamptz,
    last_contact     timestamptz,
    -- Headline status (seed precedence) and every active condition.
    headline         text NOT NULL DEFAULT '',
    conditions       text[] NOT NULL DEFAULT '{}',
    status_since     timestamptz,
    -- The day a run of consecutive import days was first completed: the
    -- node has left TESTING for good.
    production_since date,
    dwh_version      text NOT NULL DEFAULT ''
);

-- Operator-maintained settings (REST CRUD, or imported from the seed's
-- mapping JSON). A node without settings is monitored with the defaults.
CREATE TABLE node_settings (
    node_id                     text PRIMARY KEY,
    common_name                 text NOT NULL CHECK (common_name <> ''),
    long_name                   text NOT NULL DEFAULT '',
    hospital_information_system text NOT NULL DEFAULT '',
    import_interface            text NOT NULL DEFAULT '',
    -- {"PATIENT": "...", "ENCOUNTER": "...", "BILLING": "..."}
    root_ids                    jsonb NOT NULL DEFAULT '{}',
    format_ids                  jsonb NOT NULL DEFAULT '{}',
    threshold_hours_failure     integer NOT NULL DEFAULT 72 CHECK (threshold_hours_failure BETWEEN 1 AND 8760),
    notification_interval_weeks integer NOT NULL DEFAULT 1 CHECK (notification_interval_weeks BETWEEN 1 AND 52),
    consecutive_import_days     integer NOT NULL DEFAULT 3 CHECK (consecutive_import_days BETWEEN 1 AND 365),
    labels                      text[] NOT NULL DEFAULT '{}',
    mail_language               text NOT NULL DEFAULT 'de' CHECK (mail_language IN ('de', 'en')),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Who is told about a node. ED = emergency department (only main contacts
-- are mailed), IT = the site's IT (all are mailed); unsubscribed contacts
-- never are.
CREATE TABLE node_contacts (
    id           bigserial PRIMARY KEY,
    node_id      text NOT NULL,
    role         text NOT NULL CHECK (role IN ('ED', 'IT')),
    title        text NOT NULL DEFAULT '',
    first_name   text NOT NULL DEFAULT '',
    last_name    text NOT NULL DEFAULT '',
    email        text NOT NULL CHECK (email <> ''),
    main_contact boolean NOT NULL DEFAULT false,
    unsubscribed boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX node_contacts_unique ON node_contacts (node_id, role, lower(email));

-- One row per node per UTC day; every scan of the day replaces it. Counters
-- are the broker's cumulative import statistics; daily_* are deltas against
-- yesterday's row, NULL when there is no row for yesterday or the DWH was
-- restarted (last_start changed). Rates are percentages with 2 decimals,
-- NULL when nothing was processed.
CREATE TABLE node_daily_stats (
    node_id          text NOT NULL,
    day              date NOT NULL,
    checked_at       timestamptz NOT NULL,
    last_contact     timestamptz,
    last_start       timestamptz,
    last_write       timestamptz,
    last_reject      timestamptz,
    imported         bigint,
    updated          bigint,
    invalid          bigint,
    failed           bigint,
    error_rate       numeric(5, 2),
    daily_imported   bigint,
    daily_updated    bigint,
    daily_invalid    bigint,
    daily_failed     bigint,
    daily_error_rate numeric(5, 2),
    PRIMARY KEY (node_id, day)
);

-- Import errors the broker reported, identified by their content.
CREATE TABLE node_import_errors (
    node_id      text NOT NULL,
    content_hash bytea NOT NULL,
    content      text NOT NULL,
    error_at     timestamptz NOT NULL,
    repeats      bigint NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, content_hash)
);
CREATE INDEX node_import_errors_recent ON node_import_errors (node_id, error_at DESC);

-- The latest value of every key of every resource (versions, rscript,
-- python, import-scripts).
CREATE TABLE node_resources (
    node_id    text NOT NULL,
    resource   text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, resource, key)
);

-- Resource change log: old_value NULL means NEW, new_value NULL means DELETED.
CREATE TABLE node_resource_changes (
    id         bigserial PRIMARY KEY,
    node_id    text NOT NULL,
    resource   text NOT NULL,
    key        text NOT NULL,
    old_value  text,
    new_value  text,
    changed_at timestamptz NOT NULL,
    scan_id    text NOT NULL,
    UNIQUE (node_id, resource, key, scan_id)
);
CREATE INDEX node_resource_changes_node ON node_resource_changes (node_id, changed_at DESC);

-- Status history: one row each time the headline or the set of conditions
-- changes.
CREATE TABLE node_status_history (
    id                  bigserial PRIMARY KEY,
    node_id             text NOT NULL,
    changed_at          timestamptz NOT NULL,
    scan_id             text NOT NULL,
    headline            text NOT NULL,
    conditions          text[] NOT NULL,
    previous_headline   text NOT NULL DEFAULT '',
    previous_conditions text[] NOT NULL DEFAULT '{}',
    UNIQUE (node_id, scan_id)
);
CREATE INDEX node_status_history_node ON node_status_history (node_id, changed_at DESC);

-- Every e-mail decision: key is the workflow's idempotency key
-- (node, condition, episode, sequence), so a retried send never mails twice.
CREATE TABLE node_mail_log (
    id          bigserial PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    node_id     text NOT NULL,
    condition   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('alert', 'reminder', 'recovered')),
    status      text NOT NULL CHECK (status IN ('sending', 'sent', 'no_recipients', 'failed')),
    language    text NOT NULL DEFAULT 'de',
    recipients  text[] NOT NULL DEFAULT '{}',
    cc          text[] NOT NULL DEFAULT '{}',
    subject     text NOT NULL DEFAULT '',
    message_id  text NOT NULL DEFAULT '',
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX node_mail_log_node ON node_mail_log (node_id, created_at DESC);

-- +goose Down
DROP TABLE node_mail_log;
DROP TABLE node_status_history;
DROP TABLE node_resource_changes;
DROP TABLE node_resources;
DROP TABLE node_import_errors;
DROP TABLE node_daily_stats;
DROP TABLE node_contacts;
DROP TABLE node_settings;
DROP TABLE broker_nodes;
DROP TABLE broker_scans;
