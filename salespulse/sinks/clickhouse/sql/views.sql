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

-- One row per deal, from its deal events in CRM order (occurred_at, then delivery order).
CREATE OR REPLACE VIEW $db.deal_facts AS
WITH
    histories AS
    (
        SELECT
            deal_id,
            arraySort(
                x -> (x.1, x.2, x.3, x.4),
                groupArray((occurred_at, ingested_at, src_partition, src_offset, stage, rep_id, customer_id,
                            amount, original_amount, original_currency, expected_close_date, lost_reason))
            ) AS history
        FROM $db.events_final
        WHERE event_type = 'deal'
        GROUP BY deal_id
    ),
    shaped AS
    (
        SELECT
            deal_id,
            history,
            arrayMap(x -> x.5, history) AS stages,
            -- The final run of the current stage starts at run_start (1-based).
            arrayFirstIndex(s -> s != stages[-1], arrayReverse(stages)) AS first_other,
            if(first_other = 0, 1, length(stages) - first_other + 2) AS run_start,
            -- Overdue (contract §6) holds from midnight after expected_close_date (reporting time
            -- zone). pasts[i] is that moment for state i (NULL without a date).
            arrayMap(x -> toTimeZone(toDateTime64(x.11 + 1, 6, '$tz'), 'UTC'), history) AS pasts,
            -- links[j]: an overdue episode that holds in state j + 1 from its start reaches back
            -- into state j (open, dated, already overdue before state j + 1 began).
            arrayMap(
                j -> ifNull(
                    history[j].5 IN ('prospecting', 'qualified', 'proposal', 'negotiation')
                    -- (greatest() skips NULLs: a state without a date is checked first.)
                    AND isNotNull(pasts[j]) AND isNotNull(pasts[j + 1])
                    AND greatest(history[j].1, pasts[j]) < history[j + 1].1
                    AND pasts[j + 1] <= history[j + 1].1,
                    0),
                range(1, toUInt32(length(history)))) AS links,
            arrayFirstIndex(x -> NOT x, arrayReverse(links)) AS first_break,
            -- The first state of the unbroken overdue run that ends with the current state.
            length(history) - if(first_break = 0, length(links), first_break - 1) AS overdue_start
        FROM histories
    )
SELECT
    deal_id,
    history[-1].5 AS stage,
    multiIf(stage = 'won', 'won', stage = 'lost', 'lost', 'open') AS status,
    history[-1].6 AS rep_id,
    history[-1].7 AS customer_id,
    history[-1].8 AS amount,
    history[-1].9 AS original_amount,
    history[-1].10 AS original_currency,
    history[-1].11 AS expected_close_date,
    history[-1].12 AS lost_reason,
    history[1].1 AS created_at,
    history[1].6 AS created_by,
    history[run_start].1 AS stage_entered_at,
    history[run_start].6 AS stage_entered_by,
    history[-1].1 AS updated_at,
    arrayMax(arrayMap(s -> indexOf(['prospecting', 'qualified', 'proposal', 'negotiation', 'won'], s), stages))
        AS highest_rank,
    -- For the overdue rule (views_stalls.sql), what the history before "now" settles: when the
    -- current state's date passed, since when the episode that ends in it has held, and whether
    -- an earlier state of that episode was already overdue by more than the critical days.
    pasts[-1] AS close_passed_at,
    if(isNull(pasts[overdue_start]), NULL, greatest(history[overdue_start].1, pasts[overdue_start])) AS overdue_since,
    arrayExists(
        j -> j >= overdue_start AND isNotNull(pasts[j])
            AND greatest(history[j].1, pasts[j] + toIntervalDay($overdue_critical_days)) < history[j + 1].1,
        range(1, toUInt32(length(history)))) AS overdue_was_critical
FROM shaped;

-- Deals with their team and region (the owner's, on the day of the current state) and the
-- latest activity linked to them.
CREATE OR REPLACE VIEW $db.deals_attributed AS
WITH
    last_activity AS
    (
        SELECT deal_id, max(occurred_at) AS last_activity_at
        FROM $db.events_final
        WHERE deal_id != ''
        GROUP BY deal_id
    ),
    owned AS
    (
        SELECT d.*, if(o.team_id = '', 'unassigned', o.team_id) AS team_id,
               if(o.region_id = '', 'unassigned', o.region_id) AS region_id
        FROM (SELECT *, toDate(updated_at, '$tz') AS attribution_day FROM $db.deal_facts) AS d
        ASOF LEFT JOIN $db.org_history AS o ON d.rep_id = o.rep_id AND d.attribution_day >= o.effective_from
    )
SELECT owned.*, a.last_activity_at AS last_activity_at
FROM owned
LEFT JOIN last_activity AS a ON a.deal_id = owned.deal_id;

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
-- and rep it belongs to; reps are then placed in the team and region of that day.
CREATE OR REPLACE VIEW $db.kpi_daily AS
WITH
    activity AS
    (
        SELECT
            day,
            rep_id,
            countIf(event_type = 'visit') AS visits,
            countIf(event_type = 'visit' AND visit_outcome = 'completed') AS visits_completed,
            countIf(event_type = 'call') AS calls,
            countIf(event_type = 'call' AND call_outcome = 'connected') AS calls_connected,
            sumIf(toUInt64(call_duration_seconds), event_type = 'call') AS call_seconds,
            toUInt64(0) AS new_customers,
            toUInt64(0) AS deals_created,
            toUInt64(0) AS deals_won,
            toUInt64(0) AS deals_lost,
            toDecimal128(0, 4) AS won_amount,
            toInt64(0) AS cycle_days_sum,
            countIf(event_type = 'feedback' AND score_type = 'csat') AS csat_count,
            sumIf(toUInt64(score), event_type = 'feedback' AND score_type = 'csat') AS csat_sum,
            countIf(event_type = 'feedback' AND score_type = 'csat' AND score >= 4) AS csat_satisfied,
            countIf(event_type = 'feedback' AND score_type = 'nps') AS nps_count,
            countIf(event_type = 'feedback' AND score_type = 'nps' AND score >= 9) AS nps_promoters,
            countIf(event_type = 'feedback' AND score_type = 'nps' AND score <= 6) AS nps_detractors,
            countIf(event_type = 'feedback' AND category = 'complaint') AS complaints
        FROM $db.events_final
        GROUP BY day, rep_id
    ),
    first_contacts AS
    (
        SELECT
            first.1 AS day,
            first.2 AS rep_id,
            toUInt64(0) AS visits, toUInt64(0) AS visits_completed, toUInt64(0) AS calls,
            toUInt64(0) AS calls_connected, toUInt64(0) AS call_seconds,
            count() AS new_customers,
            toUInt64(0) AS deals_created, toUInt64(0) AS deals_won, toUInt64(0) AS deals_lost,
            toDecimal128(0, 4) AS won_amount, toInt64(0) AS cycle_days_sum,
            toUInt64(0) AS csat_count, toUInt64(0) AS csat_sum, toUInt64(0) AS csat_satisfied,
            toUInt64(0) AS nps_count, toUInt64(0) AS nps_promoters, toUInt64(0) AS nps_detractors,
            toUInt64(0) AS complaints
        FROM
        (
            SELECT customer_id, argMin((day, rep_id), (occurred_at, event_id)) AS first
            FROM $db.events_final
            GROUP BY customer_id
        )
        GROUP BY day, rep_id
    ),
    deal_days AS
    (
        SELECT *, toDate(created_at, '$tz') AS created_day, toDate(stage_entered_at, '$tz') AS closed_day
        FROM $db.deal_facts
    ),
    created AS
    (
        SELECT
            created_day AS day,
            created_by AS rep_id,
            toUInt64(0) AS visits, toUInt64(0) AS visits_completed, toUInt64(0) AS calls,
            toUInt64(0) AS calls_connected, toUInt64(0) AS call_seconds, toUInt64(0) AS new_customers,
            count() AS deals_created,
            toUInt64(0) AS deals_won, toUInt64(0) AS deals_lost,
            toDecimal128(0, 4) AS won_amount, toInt64(0) AS cycle_days_sum,
            toUInt64(0) AS csat_count, toUInt64(0) AS csat_sum, toUInt64(0) AS csat_satisfied,
            toUInt64(0) AS nps_count, toUInt64(0) AS nps_promoters, toUInt64(0) AS nps_detractors,
            toUInt64(0) AS complaints
        FROM deal_days
        GROUP BY day, rep_id
    ),
    closed AS
    (
        SELECT
            closed_day AS day,
            stage_entered_by AS rep_id,
            toUInt64(0) AS visits, toUInt64(0) AS visits_completed, toUInt64(0) AS calls,
            toUInt64(0) AS calls_connected, toUInt64(0) AS call_seconds, toUInt64(0) AS new_customers,
            toUInt64(0) AS deals_created,
            countIf(status = 'won') AS deals_won,
            countIf(status = 'lost') AS deals_lost,
            toDecimal128(sumIf(amount, status = 'won'), 4) AS won_amount,
            sumIf(dateDiff('day', created_day, closed_day), status = 'won') AS cycle_days_sum,
            toUInt64(0) AS csat_count, toUInt64(0) AS csat_sum, toUInt64(0) AS csat_satisfied,
            toUInt64(0) AS nps_count, toUInt64(0) AS nps_promoters, toUInt64(0) AS nps_detractors,
            toUInt64(0) AS complaints
        FROM deal_days
        WHERE status != 'open'
        GROUP BY day, rep_id
    ),
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
            SELECT * FROM activity
            UNION ALL SELECT * FROM first_contacts
            UNION ALL SELECT * FROM created
            UNION ALL SELECT * FROM closed
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
