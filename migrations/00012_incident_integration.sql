-- +goose Up
-- Dedup keys are scoped to the integration that sends them (issue 10): an
-- incident's workflow is incident:<hash of integration + dedup key>, and only
-- that integration may acknowledge or resolve it as a source. integration is
-- the owner's scope (apikey:<api_keys.id>, or staff for alerts raised by hand;
-- '' for incidents opened before scoping). unscoped_key_hash is the hash of the
-- raw dedup key (never the key, which may hold a patient id): when an
-- integration acts on a key it has no open incident for, it finds another
-- integration's incident, so the refused attempt can be audited.
ALTER TABLE incidents ADD COLUMN integration text NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN unscoped_key_hash text NOT NULL DEFAULT '';
-- Before scoping, dedup_key_hash was the unscoped hash.
UPDATE incidents SET unscoped_key_hash = dedup_key_hash WHERE integration = '';
CREATE INDEX incidents_unscoped_key_open ON incidents (unscoped_key_hash) WHERE status <> 'RESOLVED';

-- +goose Down
DROP INDEX incidents_unscoped_key_open;
ALTER TABLE incidents DROP COLUMN unscoped_key_hash;
ALTER TABLE incidents DROP COLUMN integration;
