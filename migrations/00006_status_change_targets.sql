-- +goose Up
-- The notification targets (slack:<channel>, sms:<number>) a change has
-- reached, so a retried notification skips them.
ALTER TABLE status_changes ADD COLUMN notified_targets text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE status_changes DROP COLUMN notified_targets;
