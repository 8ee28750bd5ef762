-- +goose Up
-- An SMS send whose outcome is not known yet. Before the provider is called,
-- the sender commits send_started_at (the first attempt whose outcome is
-- still unknown) and send_lease_until (when that attempt is given up: its
-- activity's deadline). An attempt that dies inside the provider call leaves
-- both set; the next attempt, once the lease has passed, looks the message
-- up in the provider's log (sent since send_started_at) before it sends
-- again, so a worker killed mid-call does not page twice. A definite answer
-- from the provider clears both.
ALTER TABLE notification_outbox
    ADD COLUMN send_started_at  timestamptz,
    ADD COLUMN send_lease_until timestamptz;

-- +goose Down
ALTER TABLE notification_outbox
    DROP COLUMN send_lease_until,
    DROP COLUMN send_started_at;
