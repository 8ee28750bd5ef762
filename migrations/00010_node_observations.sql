-- +goose Up
-- What a fleet scan saw of each node (node entry, import statistics with
-- their last errors, resources), stored here so the scan signals the node's
-- workflow only a reference (scan_id, node_id): import error text may hold
-- patient-related content and must not sit in workflow history. A retried
-- scan replaces its row. Rows older than the retention (7 days) are deleted
-- by the next fleet scan.
CREATE TABLE node_observations (
    scan_id     text NOT NULL,
    node_id     text NOT NULL,
    observed_at timestamptz NOT NULL,
    -- activities.NodeObservation as JSON.
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scan_id, node_id)
);
CREATE INDEX node_observations_observed ON node_observations (observed_at);

-- +goose Down
DROP TABLE node_observations;
