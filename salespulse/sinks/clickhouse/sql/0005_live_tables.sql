-- Migration 5: live KPI tables (docs/semantics.md, "Live tables").
--
-- Two kinds of tables. Key-ordered raw tables hold each accepted event once more, ordered by
-- the key a live row is recomputed for, so that recomputing one key reads only that key's rows
-- (the sink writes them before `events`, so a crash between the two only repeats work).
-- Live tables hold one row per key, recomputed from the key-ordered rows after every batch
-- with a version derived from the data read, so that the most complete computation wins.
-- All of them are idempotent: writing a row again never changes what the views return.

-- Every accepted event, by (rep, reporting day): what the per-(day, rep) cells are computed from.
CREATE TABLE IF NOT EXISTS $db.events_by_cell
(
    rep_id String,
    occurred_at DateTime64(6, 'UTC'),
    -- The reporting time zone is set at every start (migrations.create_views); rows keep the
    -- day they were written with, so a change of time zone needs `salespulse rebuild`.
    day Date DEFAULT toDate(occurred_at, 'UTC'),
    event_id String,
    event_type Enum8('visit' = 1, 'call' = 2, 'deal' = 3, 'feedback' = 4),
    deal_id String,
    visit_outcome LowCardinality(String),
    call_outcome LowCardinality(String),
    call_duration_seconds UInt32,
    score_type LowCardinality(String),
    score UInt8,
    category LowCardinality(String),
    dedup_version UInt64
)
ENGINE = ReplacingMergeTree(dedup_version)
ORDER BY (rep_id, day, event_id);

-- Every accepted event that links a deal, by deal: what each deal's current state is computed from.
CREATE TABLE IF NOT EXISTS $db.events_by_deal
(
    deal_id String,
    event_id String,
    event_type Enum8('visit' = 1, 'call' = 2, 'deal' = 3, 'feedback' = 4),
    occurred_at DateTime64(6, 'UTC'),
    day Date DEFAULT toDate(occurred_at, 'UTC'),
    ingested_at DateTime64(6, 'UTC'),
    src_partition UInt32,
    src_offset UInt64,
    stage LowCardinality(String),
    rep_id String,
    customer_id String,
    amount Nullable(Decimal(38, 4)),
    original_amount Nullable(Decimal(38, 10)),
    original_currency LowCardinality(String),
    expected_close_date Nullable(Date),
    lost_reason String,
    dedup_version UInt64
)
ENGINE = ReplacingMergeTree(dedup_version)
ORDER BY (deal_id, event_id);

-- Each customer's first and latest activity and latest contact. Minimum and maximum are
-- idempotent, so each event simply adds a row and merges (or FINAL) fold them.
CREATE TABLE IF NOT EXISTS $db.customer_live
(
    customer_id String,
    -- (occurred_at, event_id, rep_id): the minimum is the first activity, ties by event_id.
    first_activity SimpleAggregateFunction(min, Tuple(DateTime64(6, 'UTC'), String, String)),
    -- (occurred_at, event_id, rep_id): the maximum is the latest activity.
    latest_activity SimpleAggregateFunction(max, Tuple(DateTime64(6, 'UTC'), String, String)),
    contacted SimpleAggregateFunction(max, UInt8) COMMENT '1 once a completed visit or connected call exists',
    last_contact_at SimpleAggregateFunction(max, DateTime64(6, 'UTC')) COMMENT 'epoch while never contacted'
)
ENGINE = AggregatingMergeTree
ORDER BY customer_id;

-- The latest occurred_at accepted ("now" with --clock event), one row.
CREATE TABLE IF NOT EXISTS $db.event_clock
(
    clock UInt8,
    latest_occurred_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY clock;

-- Activity KPIs per (day, rep), recomputed from events_by_cell for the cells a batch touched.
-- version = (rows read) << 128 + (sum of their dedup_version): it never decreases as rows are
-- added, so the computation that saw the most wins.
CREATE TABLE IF NOT EXISTS $db.kpi_activity_cells
(
    day Date,
    rep_id String,
    visits UInt64,
    visits_completed UInt64,
    calls UInt64,
    calls_connected UInt64,
    call_seconds UInt64,
    csat_count UInt64,
    csat_sum UInt64,
    csat_satisfied UInt64,
    nps_count UInt64,
    nps_promoters UInt64,
    nps_detractors UInt64,
    complaints UInt64,
    version UInt256
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, rep_id);

-- Deal KPIs per (day, rep): deals created by the rep that day, and deals closed by them that
-- day; recomputed from the deal events of the deals with a deal event in the cell.
CREATE TABLE IF NOT EXISTS $db.kpi_deal_cells
(
    day Date,
    rep_id String,
    deals_created UInt64,
    deals_won UInt64,
    deals_lost UInt64,
    won_amount Decimal(38, 4),
    cycle_days_sum Int64,
    version UInt256
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, rep_id);

-- Each deal's current state (the columns of the deal_facts view) and its latest linked activity.
CREATE TABLE IF NOT EXISTS $db.deal_live
(
    deal_id String,
    stage LowCardinality(String),
    status LowCardinality(String),
    rep_id String,
    customer_id String,
    amount Nullable(Decimal(38, 4)),
    original_amount Nullable(Decimal(38, 10)),
    original_currency LowCardinality(String),
    expected_close_date Nullable(Date),
    lost_reason String,
    created_at DateTime64(6, 'UTC'),
    created_by String,
    stage_entered_at DateTime64(6, 'UTC'),
    stage_entered_by String,
    updated_at DateTime64(6, 'UTC'),
    highest_rank UInt64,
    -- The overdue rule's facts (views.sql deal_facts): when the current state's date passed
    -- (midnight after expected_close_date, reporting time zone), since when the overdue episode
    -- ending in the current state has held, and the longest an earlier state of that episode had
    -- been past its date when the next state began (microseconds; 0 when none), which the views
    -- compare with the critical days so that the threshold stays a setting.
    close_passed_at Nullable(DateTime64(6, 'UTC')),
    overdue_since Nullable(DateTime64(6, 'UTC')),
    overdue_lead_us Int64,
    last_activity_at DateTime64(6, 'UTC'),
    -- When this row was computed (ClickHouse's clock): the stall monitor examines the deals
    -- recomputed since its last round, without scanning the events.
    refreshed_at DateTime64(6, 'UTC'),
    version UInt256
)
ENGINE = ReplacingMergeTree(version)
ORDER BY deal_id;

-- (A database that ran this migration before the overdue columns existed gains them here, and
-- the live tables are rebuilt when this migration is applied.)
ALTER TABLE $db.deal_live ADD COLUMN IF NOT EXISTS close_passed_at Nullable(DateTime64(6, 'UTC')) AFTER highest_rank;
ALTER TABLE $db.deal_live ADD COLUMN IF NOT EXISTS overdue_since Nullable(DateTime64(6, 'UTC')) AFTER close_passed_at;
ALTER TABLE $db.deal_live ADD COLUMN IF NOT EXISTS overdue_lead_us Int64 AFTER overdue_since;
ALTER TABLE $db.deal_live ADD COLUMN IF NOT EXISTS refreshed_at DateTime64(6, 'UTC') AFTER last_activity_at;
