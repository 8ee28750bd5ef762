-- +goose Up
-- Operators act on incidents through Temporal signals (acknowledge, resolve,
-- note); their acts are recorded as actor_type 'operator', actor_id
-- 'operator:<name>', never as a staff member.
ALTER TABLE incident_events DROP CONSTRAINT incident_events_actor_type_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_actor_type_check
    CHECK (actor_type IN ('system', 'staff', 'source', 'operator'));

-- +goose Down
DELETE FROM incident_events WHERE actor_type = 'operator';
ALTER TABLE incident_events DROP CONSTRAINT incident_events_actor_type_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_actor_type_check
    CHECK (actor_type IN ('system', 'staff', 'source'));
