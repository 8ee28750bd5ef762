-- +goose Up
-- Typed, immutable messages between patients, clinicians, locations and
-- systems (see internal/messagestore).

-- Message types keep their integer values forever: clients depend on them.
-- 4 (the old CALLBACK) is retired and never comes back.
CREATE TABLE message_types (
    value smallint PRIMARY KEY CHECK (value >= 0 AND value <> 4),
    name  text NOT NULL UNIQUE
);
INSERT INTO message_types (value, name) VALUES
    (0, 'GENERAL'), (1, 'DOSAGE'), (2, 'DIETARY'), (3, 'FEEDBACK'), (5, 'CALLBACK'),
    (6, 'ACTIVATION_CODE'), (7, 'RED_ALERT'), (8, 'AMBER_ALERT'), (9, 'GREY_ALERT'), (10, 'CLEAR_ALERTS');

-- One message. Sender, receiver, type and content never change (a trigger
-- refuses it); PATCH sets only the state columns (retrieved, confirmed,
-- cancelled and their "by") and related_message. created_by is the token
-- subject that created it, which for a clinician acting as a location
-- differs from sender_id.
CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    created_by_type text NOT NULL,
    sender_id       text NOT NULL CHECK (sender_id <> '' AND length(sender_id) <= 128),
    sender_type     text NOT NULL CHECK (sender_type IN ('patient', 'clinician', 'location', 'system')),
    receiver_id     text NOT NULL CHECK (receiver_id <> '' AND length(receiver_id) <= 128),
    receiver_type   text NOT NULL CHECK (receiver_type IN ('patient', 'clinician', 'location', 'system')),
    type            smallint NOT NULL REFERENCES message_types (value),
    content         text NOT NULL CHECK (content <> '' AND octet_length(content) <= 10240),
    related_message uuid REFERENCES messages (id) CHECK (related_message <> id),
    internal        boolean NOT NULL DEFAULT false,
    retrieved       timestamptz,
    confirmed       timestamptz,
    confirmed_by    text CHECK (length(confirmed_by) <= 128),
    cancelled       timestamptz,
    cancelled_by    text CHECK (length(cancelled_by) <= 128),
    modified_at     timestamptz NOT NULL DEFAULT now()
);

-- Every list is newest first by (created_at, id) with a keyset cursor.
-- Sender-or-receiver is a UNION ALL of the first two, each an ordered index
-- scan that stops after one page.
CREATE INDEX messages_sender ON messages (sender_id, created_at, id);
CREATE INDEX messages_receiver ON messages (receiver_id, created_at, id);
CREATE INDEX messages_pair ON messages (sender_id, receiver_id, created_at, id);
-- "Active" is unconfirmed or a callback: most of a party's history is
-- confirmed, so the active lists get indexes of their own.
CREATE INDEX messages_sender_active ON messages (sender_id, created_at, id) WHERE confirmed IS NULL OR type = 5;
CREATE INDEX messages_receiver_active ON messages (receiver_id, created_at, id) WHERE confirmed IS NULL OR type = 5;
-- Active callbacks: to a receiver, and the newest per patient sender.
CREATE INDEX messages_callbacks_receiver ON messages (receiver_id, created_at, id)
    WHERE type = 5 AND confirmed IS NULL AND cancelled IS NULL;
CREATE INDEX messages_callbacks_sender ON messages (sender_id, created_at, id)
    WHERE type = 5 AND confirmed IS NULL AND cancelled IS NULL;

-- +goose StatementBegin
CREATE FUNCTION messages_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.created_at <> OLD.created_at OR NEW.created_by <> OLD.created_by
        OR NEW.created_by_type <> OLD.created_by_type
        OR NEW.sender_id <> OLD.sender_id OR NEW.sender_type <> OLD.sender_type
        OR NEW.receiver_id <> OLD.receiver_id OR NEW.receiver_type <> OLD.receiver_type
        OR NEW.type <> OLD.type OR NEW.content <> OLD.content OR NEW.internal <> OLD.internal THEN
        RAISE EXCEPTION 'messages: only the state columns and related_message may change'
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.modified_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER messages_immutable BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_immutable();

-- +goose Down
DROP TABLE messages;
DROP FUNCTION messages_immutable();
DROP TABLE message_types;
