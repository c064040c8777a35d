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
