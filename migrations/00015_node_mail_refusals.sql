-- +goose Up
-- Per-recipient progress of a node e-mail: one address the SMTP server
-- refuses must not stop the mail for the others (issue 11). Each envelope
-- recipient (To and Cc) of a node_mail_log row has a row here, 'pending'
-- until the server takes the mail for it ('sent'), refuses it for good
-- (5xx reply, or an address that cannot be mailed: 'refused') or for now
-- (4xx reply: 'deferred'). A retried send goes only to 'pending' and
-- 'deferred' recipients, so nobody who has the mail gets it again.
CREATE TABLE node_mail_recipients (
    mail_id           bigint NOT NULL REFERENCES node_mail_log (id) ON DELETE CASCADE,
    position          int NOT NULL,
    address           text NOT NULL,
    field             text NOT NULL CHECK (field IN ('to', 'cc')),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'deferred', 'refused')),
    -- The SMTP reply to RCPT TO; NULL without one (an address that cannot
    -- be mailed, or not yet tried).
    reply_code        int,
    reply             text NOT NULL DEFAULT '',
    attempts          int NOT NULL DEFAULT 0,
    first_deferred_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mail_id, position)
);
CREATE UNIQUE INDEX node_mail_recipients_address ON node_mail_recipients (mail_id, lower(address));

-- +goose Down
DROP TABLE node_mail_recipients;
