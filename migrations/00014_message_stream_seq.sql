-- +goose Up
-- A message stream's position: stream_seq orders the messages to one
-- receiver by commit. Every insert takes the receiver's stream lock
-- (pg_advisory_xact_lock(1297303379, hashtext(receiver_id)), see
-- internal/messagestore) before it draws its number and holds it until it
-- commits, so a number is drawn only after every earlier one for that
-- receiver committed (or rolled back): a reader that sees number n sees
-- every smaller one for that receiver, and a stream that resumes after n
-- misses nothing and repeats nothing. Numbers are shared by all receivers
-- and may have gaps.
CREATE SEQUENCE messages_stream_seq;
ALTER TABLE messages ADD COLUMN stream_seq bigint;
-- Existing messages get numbers in (created_at, id) order; the immutability
-- trigger would touch modified_at, so it is off while they do.
ALTER TABLE messages DISABLE TRIGGER messages_immutable;
UPDATE messages m SET stream_seq = o.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM messages) o
WHERE m.id = o.id;
ALTER TABLE messages ENABLE TRIGGER messages_immutable;
SELECT setval('messages_stream_seq', COALESCE((SELECT max(stream_seq) FROM messages), 0) + 1, false);
ALTER TABLE messages
    ALTER COLUMN stream_seq SET DEFAULT nextval('messages_stream_seq'),
    ALTER COLUMN stream_seq SET NOT NULL;
ALTER SEQUENCE messages_stream_seq OWNED BY messages.stream_seq;
CREATE INDEX messages_receiver_stream ON messages (receiver_id, stream_seq);

-- +goose Down
DROP INDEX messages_receiver_stream;
ALTER TABLE messages DROP COLUMN stream_seq;
