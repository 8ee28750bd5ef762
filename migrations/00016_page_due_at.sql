-- +goose Up
-- When a page was due: the escalation step's or start reminder's due time
-- that the workflow's timer waited for (NULL for pages sent at once, such as
-- the assignment page). sent_at - due_at is how late the page went out.
ALTER TABLE notification_outbox ADD COLUMN due_at timestamptz;

-- +goose Down
ALTER TABLE notification_outbox DROP COLUMN due_at;
