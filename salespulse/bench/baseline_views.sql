-- The contract views as they were before the live tables (computed from events FINAL at every
-- query): the baseline of `salespulse bench --views`. View names get a base_ prefix when created.
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

-- Views for sales managers (contract §5): targets and attainment, leaderboards, customer follow-ups.
--
-- Like the stall views, they compare with "now" ($now): the wall clock, or with --clock event
-- the latest occurred_at accepted, so a replay gives the same rows. docs/semantics.md states
-- each rule in words.

-- Targets as currently known: one per level|entity_id|metric|period|period_start, the latest
-- record winning, tombstones applied. A target exists only where one was set: nothing is
-- split down to reps or summed up to teams.
CREATE OR REPLACE VIEW $db.targets AS
SELECT
    level,
    entity_id,
    metric,
    period,
    period_start,
    if(period = 'month', addMonths(period_start, 1), addMonths(period_start, 3)) AS period_end,
    target
FROM $db.target_records FINAL
WHERE is_deleted = 0;

-- Attainment and pacing per target. Pacing is linear over the period in the reporting time
-- zone; statuses compare cross-multiplied values, so the boundaries (exactly on target,
-- exactly 10% behind) are exact and not subject to rounding.
CREATE OR REPLACE VIEW $db.target_attainment AS
WITH
    toDate($now, '$tz') AS today,
    kpi_metrics AS
    (
        SELECT day, level, entity_id, m.1 AS metric, m.2 AS value
        FROM $db.kpi_daily
        ARRAY JOIN [
            ('won_amount', toDecimal128(won_amount, 4)),
            ('deals_won', toDecimal128(deals_won, 4)),
            ('visits', toDecimal128(visits, 4)),
            ('calls', toDecimal128(calls, 4)),
            ('new_customers', toDecimal128(new_customers, 4))
        ] AS m
        WHERE m.1 IN (SELECT DISTINCT metric FROM $db.targets)
    ),
    actuals AS
    (
        -- Up to now: a day after today (wall clock) cannot have happened yet.
        SELECT t.period, t.period_start, t.level, t.entity_id, t.metric, sum(k.value) AS actual
        FROM $db.targets AS t
        INNER JOIN kpi_metrics AS k ON k.level = t.level AND k.entity_id = t.entity_id AND k.metric = t.metric
        WHERE k.day >= t.period_start AND k.day < t.period_end AND k.day <= today
        GROUP BY t.period, t.period_start, t.level, t.entity_id, t.metric
    ),
    -- Open deals weighted by their stage's probability, in the period their close is expected.
    weighted_open AS
    (
        SELECT
            entity.1 AS level,
            entity.2 AS entity_id,
            expected_close_date,
            amount * probability AS weighted_amount,
            probability AS weighted_deals
        FROM
        (
            SELECT *, multiIf(
                stage = 'prospecting', toDecimal64('$p_prospecting', 4),
                stage = 'qualified', toDecimal64('$p_qualified', 4),
                stage = 'proposal', toDecimal64('$p_proposal', 4),
                toDecimal64('$p_negotiation', 4)) AS probability
            FROM $db.deals_attributed
            WHERE status = 'open' AND expected_close_date IS NOT NULL
        )
        ARRAY JOIN [('rep', rep_id), ('team', team_id), ('region', region_id), ('company', 'all')] AS entity
    ),
    forecasts AS
    (
        SELECT
            t.period, t.period_start, t.level, t.entity_id, t.metric,
            sum(w.weighted_amount) AS open_weighted_amount,
            sum(w.weighted_deals) AS open_weighted_deals
        FROM $db.targets AS t
        INNER JOIN weighted_open AS w ON w.level = t.level AND w.entity_id = t.entity_id
        WHERE t.metric IN ('won_amount', 'deals_won')
          AND w.expected_close_date >= t.period_start AND w.expected_close_date < t.period_end
        GROUP BY t.period, t.period_start, t.level, t.entity_id, t.metric
    ),
    paced AS
    (
        SELECT
            t.period AS period, t.period_start AS period_start, t.period_end AS period_end, t.level AS level,
            t.entity_id AS entity_id, t.metric AS metric, t.target AS target,
            toDecimal128(ifNull(a.actual, 0), 4) AS actual,
            toInt64(dateDiff('second', toDateTime64(t.period_start, 6, '$tz'), toDateTime64(t.period_end, 6, '$tz')))
                AS period_seconds,
            toInt64(least(period_seconds,
                greatest(0, dateDiff('second', toDateTime64(t.period_start, 6, '$tz'), $now)))) AS elapsed_seconds,
            f.open_weighted_amount AS open_weighted_amount,
            f.open_weighted_deals AS open_weighted_deals
        FROM $db.targets AS t
        LEFT JOIN actuals AS a
            ON a.period = t.period AND a.period_start = t.period_start AND a.level = t.level
               AND a.entity_id = t.entity_id AND a.metric = t.metric
        LEFT JOIN forecasts AS f
            ON f.period = t.period AND f.period_start = t.period_start AND f.level = t.level
               AND f.entity_id = t.entity_id AND f.metric = t.metric
    )
SELECT
    period,
    period_start,
    level,
    entity_id,
    metric,
    target,
    actual,
    if(target = 0, NULL, toFloat64(actual) / toFloat64(target)) AS attainment,
    toFloat64(target) * elapsed_seconds / period_seconds AS expected_by_now,
    -- The run rate so far, carried to the period's end (the actual once the period is over).
    if(elapsed_seconds = 0, NULL, toFloat64(actual) * period_seconds / elapsed_seconds) AS projected,
    multiIf(
        actual >= target, 'achieved',
        actual * period_seconds >= target * elapsed_seconds, 'on_track',
        actual * period_seconds * 10 > target * elapsed_seconds * 9, 'at_risk',
        'off_track') AS status,
    -- Closed won so far plus the open deals expected to close in the period, weighted.
    multiIf(
        metric = 'won_amount', toFloat64(actual) + toFloat64(ifNull(open_weighted_amount, 0)),
        metric = 'deals_won', toFloat64(actual) + toFloat64(ifNull(open_weighted_deals, 0)),
        NULL) AS forecast,
    period_end,
    elapsed_seconds / period_seconds AS elapsed_share
FROM paced;

-- Rankings per month and quarter, per level, by won_amount, deals_won, win_rate (at least 5
-- closed deals), activities (visits + calls) and csat (at least 5 responses). Every entity
-- with activity in the period is ranked; ties share a rank (1, 1, 3).
CREATE OR REPLACE VIEW $db.leaderboard AS
WITH
    per_period AS
    (
        SELECT
            p.1 AS period,
            p.2 AS period_start,
            level,
            entity_id,
            sum(won_amount) AS won_amount,
            sum(deals_won) AS deals_won,
            sum(deals_lost) AS deals_lost,
            sum(visits) + sum(calls) AS activities,
            sum(csat_count) AS csat_count,
            sum(csat_satisfied) AS csat_satisfied
        FROM $db.kpi_daily
        ARRAY JOIN [('month', toStartOfMonth(day)), ('quarter', toStartOfQuarter(day))] AS p
        WHERE level != 'company'
        GROUP BY period, period_start, level, entity_id
    ),
    scored AS
    (
        SELECT period, period_start, level, entity_id, m.1 AS metric, m.2 AS value, m.3 AS qualifies
        FROM per_period
        ARRAY JOIN [
            ('won_amount', toFloat64(won_amount), true),
            ('deals_won', toFloat64(deals_won), true),
            ('win_rate', deals_won / greatest(1, deals_won + deals_lost), deals_won + deals_lost >= 5),
            ('activities', toFloat64(activities), true),
            ('csat', csat_satisfied / greatest(1, csat_count), csat_count >= 5)
        ] AS m
    )
SELECT
    period,
    period_start,
    level,
    metric,
    toUInt32(rank() OVER (PARTITION BY period, period_start, level, metric ORDER BY value DESC)) AS rank,
    entity_id,
    value
FROM scored
WHERE qualifies;

-- Customers whose next contact (定期回访) is due or overdue. Contact = a completed visit or a
-- connected call; a customer never contacted counts from the first time it appeared. The
-- interval is the customer's follow_up_days, else its tier's default. The rep is the one of
-- the customer's latest activity, placed in the team and region of today.
CREATE OR REPLACE VIEW $db.followup_due AS
WITH
    toDate($now, '$tz') AS today,
    customers AS
    (
        SELECT
            customer_id,
            tier,
            coalesce(follow_up_days,
                     multiIf(tier = 'A', $f_A, tier = 'B', $f_B, $f_C)) AS follow_up_days
        FROM $db.customer_records FINAL
        WHERE is_deleted = 0
    ),
    activity AS
    (
        SELECT
            customer_id,
            maxIf(occurred_at, is_contact) AS contacted_at,
            countIf(is_contact) AS contacts,
            min(occurred_at) AS first_seen_at,
            argMax(rep_id, (occurred_at, event_id)) AS rep_id
        FROM
        (
            SELECT customer_id, occurred_at, event_id, rep_id,
                   (event_type = 'visit' AND visit_outcome = 'completed')
                   OR (event_type = 'call' AND call_outcome = 'connected') AS is_contact
            FROM $db.events_final
            WHERE customer_id IN (SELECT customer_id FROM customers)
        )
        GROUP BY customer_id
    ),
    due AS
    (
        SELECT
            c.customer_id AS customer_id,
            c.tier AS tier,
            c.follow_up_days AS follow_up_days,
            a.rep_id AS rep_id,
            if(a.contacts = 0, NULL, a.contacted_at) AS last_contact_at,
            if(a.contacts = 0, a.first_seen_at, a.contacted_at) + toIntervalDay(c.follow_up_days) AS due_at
        FROM customers AS c
        INNER JOIN activity AS a ON a.customer_id = c.customer_id
    ),
    placed AS
    (
        SELECT due.*, if(o.team_id = '', 'unassigned', o.team_id) AS team_id,
               if(o.region_id = '', 'unassigned', o.region_id) AS region_id
        FROM (SELECT *, today AS placement_day FROM due) AS due
        ASOF LEFT JOIN $db.org_history AS o ON due.rep_id = o.rep_id AND due.placement_day >= o.effective_from
    )
SELECT
    customer_id,
    tier,
    rep_id,
    team_id,
    region_id,
    last_contact_at,
    due_at,
    toUInt32(intDiv(dateDiff('second', due_at, $now), 86400)) AS overdue_days,
    if(overdue_days = 0, 'due', 'overdue') AS status,
    follow_up_days
FROM placed
WHERE due_at <= $now;

-- Stalled opportunities (contract §5, §6).
--
-- stall_reasons and stalled_deals are the truth now: the rules applied to the deals' current
-- state (deals_attributed) at "now" ($now), whatever order the events arrived in. They never
-- read the alert log, so an alert recorded before a late event arrived cannot distort them.
-- stall_alerts is the alert lifecycle the stall monitor recorded, kept consistent with them.

-- One row per open deal and rule that holds now, with that rule's severity.
CREATE OR REPLACE VIEW $db.stall_reasons AS
WITH $now AS now_at
SELECT
    deal_id,
    rep_id,
    team_id,
    region_id,
    customer_id,
    stage,
    amount,
    last_activity_at,
    expected_close_date,
    rule.1 AS reason,
    assumeNotNull(rule.2) AS stalled_since,
    if(rule.3, 'critical', 'warning') AS severity,
    now_at AS now
FROM $db.deals_attributed
-- (reason, since when it holds, critical now, holds now); "more than N days" is strict.
ARRAY JOIN [
    ('idle',
     last_activity_at + toIntervalDay($idle_days[stage]),
     now_at > last_activity_at + toIntervalDay(2 * $idle_days[stage]),
     now_at > last_activity_at + toIntervalDay($idle_days[stage])),
    ('stuck',
     stage_entered_at + toIntervalDay($stage_days[stage]),
     now_at > stage_entered_at + toIntervalDay(2 * $stage_days[stage]),
     now_at > stage_entered_at + toIntervalDay($stage_days[stage])),
    -- (greatest() skips NULLs: a deal without an expected_close_date is never overdue.)
    ('overdue',
     overdue_since,
     isNotNull(close_passed_at)
        AND (overdue_was_critical
             OR greatest(updated_at, close_passed_at + toIntervalDay($overdue_critical_days)) < now_at),
     isNotNull(close_passed_at) AND greatest(updated_at, close_passed_at) < now_at)
] AS rule
WHERE status = 'open' AND rule.4;

-- One row per alert (an episode of one rule on one deal), in its latest state: the transition
-- recorded last (sequence), not the one with the latest event time, because a transition that
-- late data called for can carry an earlier time than one recorded before it.
CREATE OR REPLACE VIEW $db.stall_alerts AS
SELECT
    alert_id,
    any(t_deal_id) AS deal_id,
    any(t_reason) AS reason,
    argMax(t_severity, (t_sequence, t_at, t_order)) AS severity,
    argMax(t_state, (t_sequence, t_at, t_order)) AS state,
    argMax(t_at, (t_sequence, t_at, t_order)) AS at,
    max(t_sequence) AS sequence,
    any(t_stalled_since) AS stalled_since,
    minIf(t_at, t_state = 'opened') AS opened_at,
    if(countIf(t_state = 'escalated') > 0, minIf(t_at, t_state = 'escalated'), NULL) AS escalated_at,
    if(countIf(t_state = 'resolved') > 0, minIf(t_at, t_state = 'resolved'), NULL) AS resolved_at,
    nullIf(anyIf(t_resolved_by, t_state = 'resolved'), '') AS resolved_by,
    any(t_threshold_days) AS threshold_days,
    any(t_rep_id) AS rep_id,
    any(t_team_id) AS team_id,
    any(t_region_id) AS region_id,
    any(t_customer_id) AS customer_id,
    any(t_stage) AS stage,
    argMax(t_amount, (t_sequence, t_at, t_order)) AS amount,
    any(t_currency) AS currency,
    min(t_detected_at) AS detected_at
FROM
(
    -- Prefixed names: the aggregates above reuse the plain names as aliases.
    SELECT
        alert_id, deal_id AS t_deal_id, reason AS t_reason, severity AS t_severity, state AS t_state,
        at AS t_at, sequence AS t_sequence,
        indexOf(['opened', 'escalated', 'deescalated', 'resolved'], state) AS t_order,
        stalled_since AS t_stalled_since, resolved_by AS t_resolved_by, threshold_days AS t_threshold_days,
        rep_id AS t_rep_id, team_id AS t_team_id, region_id AS t_region_id, customer_id AS t_customer_id,
        stage AS t_stage, amount AS t_amount, currency AS t_currency, detected_at AS t_detected_at
    FROM $db.stall_alert_log FINAL
)
GROUP BY alert_id;

-- Open deals that are stalled now: one row per deal, with every rule that holds.
CREATE OR REPLACE VIEW $db.stalled_deals AS
WITH noticed AS
(
    -- When the stall monitor first noticed the deal's current episodes (wall clock).
    SELECT deal_id, min(detected_at) AS detected_at
    FROM $db.stall_alerts
    WHERE state != 'resolved'
    GROUP BY deal_id
)
SELECT
    r.deal_id AS deal_id,
    any(r.rep_id) AS rep_id,
    any(r.team_id) AS team_id,
    any(r.region_id) AS region_id,
    any(r.customer_id) AS customer_id,
    any(r.stage) AS stage,
    any(r.amount) AS amount,
    arraySort(groupArray(r.reason)) AS reasons,
    if(has(groupArray(r.severity), 'critical'), 'critical', 'warning') AS severity,
    min(r.stalled_since) AS stalled_since,
    -- Not noticed yet (the monitor's next round will): detected by this query.
    if(any(n.deal_id) = '', now64(6, 'UTC'), any(n.detected_at)) AS detected_at,
    toUInt32(greatest(0, dateDiff('second', any(r.last_activity_at), any(r.now))) / 86400) AS idle_days,
    any(r.last_activity_at) AS last_activity_at,
    any(r.expected_close_date) AS expected_close_date
FROM $db.stall_reasons AS r
LEFT JOIN noticed AS n ON n.deal_id = r.deal_id
GROUP BY r.deal_id;

