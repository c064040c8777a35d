-- Migration 1: the tables the ingest service writes.
--
-- Every table keeps what the pipeline accepted, plus where it came from (topic, partition,
-- offset) and when it was written. Views (views.sql) derive every contract value from these
-- rows, so a redelivered or replayed message never changes a result: duplicates are collapsed
-- by the views themselves (FINAL), not by background merges.

-- Activity events of all four types, one row per accepted message. The type-specific
-- columns are empty for the other types.
CREATE TABLE IF NOT EXISTS $db.events
(
    event_id String,
    event_type Enum8('visit' = 1, 'call' = 2, 'deal' = 3, 'feedback' = 4),
    occurred_at DateTime64(6, 'UTC'),
    rep_id String,
    customer_id String,
    deal_id String COMMENT 'empty when the activity links no deal',
    source String,
    schema_version UInt16,
    visit_duration_minutes UInt32,
    visit_outcome LowCardinality(String),
    call_direction LowCardinality(String),
    call_duration_seconds UInt32,
    call_outcome LowCardinality(String),
    stage LowCardinality(String),
    -- NULL on visits, calls and feedback (and cheap to write for them).
    amount Nullable(Decimal(38, 4)) COMMENT 'in the reporting currency',
    original_amount Nullable(Decimal(38, 10)),
    original_currency LowCardinality(String),
    expected_close_date Nullable(Date),
    lost_reason String,
    score_type LowCardinality(String),
    score UInt8,
    category LowCardinality(String),
    comment String,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    ingested_at DateTime64(6, 'UTC'),
    -- Larger for earlier acceptance: ReplacingMergeTree keeps the largest version, so FINAL
    -- returns the first accepted copy of an event_id.
    dedup_version UInt64
)
ENGINE = ReplacingMergeTree(dedup_version)
ORDER BY event_id;

-- Org history: one row per org record key (rep_id|effective_from); the latest write wins,
-- tombstones delete.
CREATE TABLE IF NOT EXISTS $db.org_records
(
    record_key String,
    rep_id String,
    rep_name String,
    team_id String,
    team_name String,
    manager_id String,
    region_id String,
    effective_from Date,
    is_deleted UInt8,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    ingested_at DateTime64(6, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY record_key;

CREATE TABLE IF NOT EXISTS $db.target_records
(
    record_key String,
    level LowCardinality(String),
    entity_id String,
    metric LowCardinality(String),
    period LowCardinality(String),
    period_start Date,
    target Decimal(38, 4),
    is_deleted UInt8,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    ingested_at DateTime64(6, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY record_key;

CREATE TABLE IF NOT EXISTS $db.customer_records
(
    record_key String,
    customer_id String,
    tier LowCardinality(String),
    follow_up_days Nullable(UInt16),
    is_deleted UInt8,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    ingested_at DateTime64(6, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY record_key;
