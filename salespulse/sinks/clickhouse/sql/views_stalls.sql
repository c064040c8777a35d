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
     -- Holds once the episode's start is past, even when the current state began exactly now:
     -- a deal update at "now" that keeps a passed date does not interrupt the episode.
     isNotNull(overdue_since) AND overdue_since < now_at)
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
    -- The resolution that stands: an alert withdrawn by late data can open again (docs/semantics.md).
    if(state = 'resolved', at, NULL) AS resolved_at,
    if(state = 'resolved', nullIf(argMax(t_resolved_by, (t_sequence, t_at, t_order)), ''), NULL) AS resolved_by,
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
