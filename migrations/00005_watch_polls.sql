-- +goose Up
-- One row per watch poll: when it was due and when it happened. Poll lag
-- (polled_at - scheduled_at) is the watch's health; the benchmark reads it.
CREATE TABLE watch_polls (
    poll_id      text PRIMARY KEY,
    watch_id     uuid NOT NULL,
    scheduled_at timestamptz NOT NULL,
    polled_at    timestamptz NOT NULL,
    services     integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT ''
);
CREATE INDEX watch_polls_watch ON watch_polls (watch_id, polled_at DESC);
CREATE INDEX watch_polls_polled ON watch_polls (polled_at);

-- +goose Down
DROP TABLE watch_polls;
