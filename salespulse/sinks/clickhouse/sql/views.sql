-- The contract views of contract §5 and the internal views they are built from.
--
-- Re-created at every start (CREATE OR REPLACE), because they embed settings: the reporting
-- time zone ($tz), the reporting currency ($currency) and the stage probabilities. Every
-- view returns final values: duplicates are collapsed with FINAL here, so callers never need
-- FINAL or argMax. docs/semantics.md states each rule in words.

-- Each accepted event once (the first accepted copy of an event_id), with its reporting day.
CREATE OR REPLACE VIEW $db.events_final AS
SELECT *, toDate(occurred_at, '$tz') AS day
FROM $db.events FINAL;

-- The org history as currently known: one record per rep_id|effective_from, tombstones applied.
CREATE OR REPLACE VIEW $db.org_history AS
SELECT rep_id, effective_from, rep_name, team_id, team_name, manager_id, region_id
FROM $db.org_records FINAL
WHERE is_deleted = 0;

-- One row per deal, from its deal events in CRM order (occurred_at, then delivery order): the
-- live table deal_live, recomputed for every deal a batch touches (docs/semantics.md).
CREATE OR REPLACE VIEW $db.deal_facts AS
SELECT
    deal_id, stage, status, rep_id, customer_id, amount, original_amount, original_currency,
    expected_close_date, lost_reason, created_at, created_by, stage_entered_at, stage_entered_by,
    updated_at, highest_rank,
    -- For the overdue rule (views_stalls.sql), what the history before "now" settles: when the
    -- current state's date passed, since when the episode that ends in it has held, and whether
    -- an earlier state of that episode was already overdue by more than the critical days
    -- (deal_live keeps how long it had been overdue, so the threshold stays a setting).
    close_passed_at, overdue_since,
    overdue_lead_us > toInt64($overdue_critical_days) * 86400000000 AS overdue_was_critical
FROM $db.deal_live FINAL;

-- Deals with their team and region (the owner's, on the day of the current state) and the
-- latest activity linked to them.
CREATE OR REPLACE VIEW $db.deals_attributed AS
SELECT d.* EXCEPT (last_activity_at, refreshed_at, version, overdue_lead_us),
       d.overdue_lead_us > toInt64($overdue_critical_days) * 86400000000 AS overdue_was_critical,
       if(o.team_id = '', 'unassigned', o.team_id) AS team_id,
       if(o.region_id = '', 'unassigned', o.region_id) AS region_id, d.last_activity_at AS last_activity_at
FROM (SELECT *, toDate(updated_at, '$tz') AS attribution_day FROM $db.deal_live FINAL) AS d
ASOF LEFT JOIN $db.org_history AS o ON d.rep_id = o.rep_id AND d.attribution_day >= o.effective_from;

CREATE OR REPLACE VIEW $db.deals_current AS
SELECT
    deal_id,
    rep_id,
    team_id,
    region_id,
    customer_id,
    stage,
    status,
    amount,
    '$currency' AS currency,
    created_at,
    stage_entered_at,
    last_activity_at,
    expected_close_date,
    if(status = 'open', NULL, stage_entered_at) AS closed_at,
    updated_at,
    original_amount,
    original_currency,
    nullIf(lost_reason, '') AS lost_reason
FROM $db.deals_attributed;

-- Daily KPIs per rep, team, region and company (contract §4). Each source contributes to the day
-- and rep it belongs to; reps are then placed in the team and region of that day. The (day, rep)
-- rows come from the live tables: activity and deal cells, and each customer's first activity.
CREATE OR REPLACE VIEW $db.kpi_daily AS
WITH
    rep_daily AS
    (
        SELECT
            day, rep_id,
            sum(visits) AS visits, sum(visits_completed) AS visits_completed, sum(calls) AS calls,
            sum(calls_connected) AS calls_connected, sum(call_seconds) AS call_seconds,
            sum(new_customers) AS new_customers, sum(deals_created) AS deals_created,
            sum(deals_won) AS deals_won, sum(deals_lost) AS deals_lost,
            sum(won_amount) AS won_amount, sum(cycle_days_sum) AS cycle_days_sum,
            sum(csat_count) AS csat_count, sum(csat_sum) AS csat_sum, sum(csat_satisfied) AS csat_satisfied,
            sum(nps_count) AS nps_count, sum(nps_promoters) AS nps_promoters,
            sum(nps_detractors) AS nps_detractors, sum(complaints) AS complaints
        FROM
        (
            SELECT
                day, rep_id, visits, visits_completed, calls, calls_connected, call_seconds,
                toUInt64(0) AS new_customers, toUInt64(0) AS deals_created, toUInt64(0) AS deals_won,
                toUInt64(0) AS deals_lost, toDecimal128(0, 4) AS won_amount, toInt64(0) AS cycle_days_sum,
                csat_count, csat_sum, csat_satisfied, nps_count, nps_promoters, nps_detractors, complaints
            FROM $db.kpi_activity_cells FINAL
            UNION ALL
            SELECT
                day, rep_id, toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
                toUInt64(0), deals_created, deals_won, deals_lost, won_amount, cycle_days_sum,
                toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)
            FROM $db.kpi_deal_cells FINAL
            UNION ALL
            SELECT
                toDate(first_activity.1, '$tz') AS day, first_activity.3 AS rep_id,
                toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
                toUInt64(1), toUInt64(0), toUInt64(0), toUInt64(0), toDecimal128(0, 4), toInt64(0),
                toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)
            FROM $db.customer_live FINAL
        )
        GROUP BY day, rep_id
    ),
    attributed AS
    (
        SELECT r.*, if(o.team_id = '', 'unassigned', o.team_id) AS team_id,
               if(o.region_id = '', 'unassigned', o.region_id) AS region_id
        FROM rep_daily AS r
        ASOF LEFT JOIN $db.org_history AS o ON r.rep_id = o.rep_id AND r.day >= o.effective_from
    )
SELECT
    day,
    entity.1 AS level,
    entity.2 AS entity_id,
    sum(visits) AS visits, sum(visits_completed) AS visits_completed, sum(calls) AS calls,
    sum(calls_connected) AS calls_connected, sum(call_seconds) AS call_seconds,
    sum(new_customers) AS new_customers, sum(deals_created) AS deals_created,
    sum(deals_won) AS deals_won, sum(deals_lost) AS deals_lost,
    sum(won_amount) AS won_amount, sum(cycle_days_sum) AS cycle_days_sum,
    sum(csat_count) AS csat_count, sum(csat_sum) AS csat_sum, sum(csat_satisfied) AS csat_satisfied,
    sum(nps_count) AS nps_count, sum(nps_promoters) AS nps_promoters,
    sum(nps_detractors) AS nps_detractors, sum(complaints) AS complaints
FROM attributed
ARRAY JOIN [('rep', rep_id), ('team', team_id), ('region', region_id), ('company', 'all')] AS entity
GROUP BY day, level, entity_id
HAVING visits != 0 OR visits_completed != 0 OR calls != 0 OR calls_connected != 0 OR call_seconds != 0
    OR new_customers != 0 OR deals_created != 0 OR deals_won != 0 OR deals_lost != 0 OR won_amount != 0
    OR cycle_days_sum != 0 OR csat_count != 0 OR nps_count != 0 OR complaints != 0;

-- Funnel conversion per stage: of the deals that reached a stage (or skipped past it), how many
-- went further.
CREATE OR REPLACE VIEW $db.stage_conversion AS
SELECT
    entity.1 AS level,
    entity.2 AS entity_id,
    funnel.1 AS stage,
    funnel.2 AS stage_order,
    count() AS entered,
    countIf(highest_rank > funnel.2) AS advanced,
    advanced / entered AS conversion
FROM $db.deals_attributed
ARRAY JOIN [('rep', rep_id), ('team', team_id), ('region', region_id), ('company', 'all')] AS entity
ARRAY JOIN [('prospecting', 1), ('qualified', 2), ('proposal', 3), ('negotiation', 4)] AS funnel
WHERE highest_rank >= funnel.2
GROUP BY level, entity_id, stage, stage_order;

-- Open pipeline per stage, with the amount weighted by each stage's win probability.
CREATE OR REPLACE VIEW $db.pipeline_current AS
SELECT
    entity.1 AS level,
    entity.2 AS entity_id,
    stage,
    count() AS open_deals,
    sum(amount) AS open_amount,
    sum(amount * multiIf(
        stage = 'prospecting', toDecimal64('$p_prospecting', 4),
        stage = 'qualified', toDecimal64('$p_qualified', 4),
        stage = 'proposal', toDecimal64('$p_proposal', 4),
        toDecimal64('$p_negotiation', 4))) AS weighted_amount
FROM $db.deals_attributed
ARRAY JOIN [('rep', rep_id), ('team', team_id), ('region', region_id), ('company', 'all')] AS entity
WHERE status = 'open'
GROUP BY level, entity_id, stage;
