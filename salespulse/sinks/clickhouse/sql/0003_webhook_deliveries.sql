-- Migration 3: webhook deliveries of stall alert transitions (contract §6).
--
-- One row per (transition, target) and outcome. 'sending' is written before the first attempt:
-- after a crash during a delivery its outcome is unknown, and the notifier does not send it
-- again (at most one notification per transition). 'dead' rows are the dead-letter records of
-- notifications that kept failing, with the last error.
CREATE TABLE IF NOT EXISTS $db.webhook_deliveries
(
    transition_id String,
    target String,
    outcome LowCardinality(String),
    attempts UInt16,
    error String,
    recorded_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (transition_id, target);
