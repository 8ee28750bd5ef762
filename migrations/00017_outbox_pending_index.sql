-- +goose Up
-- The outbox rows not sent yet, for the backlog that /metrics reads at every
-- scrape (vigil_outbox_pending, vigil_outbox_oldest_pending_age_seconds):
-- pending rows are few, so the index stays small however large the outbox
-- grows.
CREATE INDEX notification_outbox_pending ON notification_outbox (channel, created_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX notification_outbox_pending;
