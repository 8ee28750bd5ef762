-- +goose Up
-- Notification channels beyond in-app: the Slack message of each incident
-- and faster look-ups of a person's notifications.

-- One Slack message per incident, posted once and edited in place. The row
-- is reserved (ts = '') before the message is posted and completed with its
-- timestamp after, so a retry after a crash between the two knows a post may
-- already be in the channel and looks for it before posting again. last_seq
-- is the audit sequence number of the state the message shows, so an edit
-- that arrives late never overwrites a newer one.
CREATE TABLE incident_slack_messages (
    incident_id uuid PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    channel     text NOT NULL,
    ts          text NOT NULL,
    last_seq    integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A person's notifications across channels, newest first.
CREATE INDEX notification_outbox_recipient_sent ON notification_outbox (recipient, sent_at DESC);

-- A Slack account acts as exactly one staff member.
CREATE UNIQUE INDEX staff_slack_user_id ON staff (slack_user_id) WHERE slack_user_id <> '';

-- +goose Down
DROP INDEX staff_slack_user_id;
DROP INDEX notification_outbox_recipient_sent;
DROP TABLE incident_slack_messages;
