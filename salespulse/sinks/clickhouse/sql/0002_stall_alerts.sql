-- Migration 2: stall alert transitions (contract §6) and the monitor's progress.
--
-- The stall monitor writes each transition here first (published = 0), then to the alerts
-- topic, then again with published = 1: after a crash, the rows still at 0 are the ones to
-- check against the topic before publishing, so no transition is lost or sent twice.
CREATE TABLE IF NOT EXISTS $db.stall_alert_log
(
    transition_id String,
    alert_id String,
    deal_id String,
    reason LowCardinality(String),
    state LowCardinality(String),
    severity LowCardinality(String),
    at DateTime64(6, 'UTC'),
    stalled_since DateTime64(6, 'UTC'),
    threshold_days UInt16,
    resolved_by LowCardinality(String),
    rep_id String,
    team_id String,
    region_id String,
    customer_id String,
    stage LowCardinality(String),
    amount Decimal(38, 4),
    currency LowCardinality(String),
    detected_at DateTime64(6, 'UTC'),
    published UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (deal_id, transition_id);

-- How far the monitor has looked: deals with events ingested after `watermark` are re-examined.
CREATE TABLE IF NOT EXISTS $db.stall_monitor_state
(
    owner String,
    watermark DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY owner;
