-- Stalled opportunities (contract §5, §6), from the transitions the stall monitor recorded.

-- One row per alert (an episode of one rule on one deal), in its latest state.
CREATE OR REPLACE VIEW $db.stall_alerts AS
SELECT
    alert_id,
    any(t_deal_id) AS deal_id,
    any(t_reason) AS reason,
    argMax(t_severity, (t_at, t_order)) AS severity,
    argMax(t_state, (t_at, t_order)) AS state,
    max(t_at) AS at,
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
    argMax(t_amount, (t_at, t_order)) AS amount,
    any(t_currency) AS currency,
    min(t_detected_at) AS detected_at
FROM
(
    -- Prefixed names: the aggregates above reuse the plain names as aliases.
    SELECT
        alert_id, deal_id AS t_deal_id, reason AS t_reason, severity AS t_severity, state AS t_state,
        at AS t_at, indexOf(['opened', 'escalated', 'resolved'], state) AS t_order,
        stalled_since AS t_stalled_since, resolved_by AS t_resolved_by, threshold_days AS t_threshold_days,
        rep_id AS t_rep_id, team_id AS t_team_id, region_id AS t_region_id, customer_id AS t_customer_id,
        stage AS t_stage, amount AS t_amount, currency AS t_currency, detected_at AS t_detected_at
    FROM $db.stall_alert_log FINAL
)
GROUP BY alert_id;

-- Open deals that are stalled now: one row per deal, with every rule that holds.
CREATE OR REPLACE VIEW $db.stalled_deals AS
WITH open_alerts AS
(
    SELECT
        deal_id,
        arraySort(groupUniqArray(reason)) AS reasons,
        if(has(groupArray(severity), 'critical'), 'critical', 'warning') AS severity,
        min(stalled_since) AS stalled_since,
        min(detected_at) AS detected_at
    FROM $db.stall_alerts
    WHERE state != 'resolved'
    GROUP BY deal_id
)
SELECT
    a.deal_id AS deal_id,
    d.rep_id AS rep_id,
    d.team_id AS team_id,
    d.region_id AS region_id,
    d.customer_id AS customer_id,
    d.stage AS stage,
    d.amount AS amount,
    a.reasons AS reasons,
    a.severity AS severity,
    a.stalled_since AS stalled_since,
    a.detected_at AS detected_at,
    toUInt32(greatest(0, dateDiff('second', d.last_activity_at, $now)) / 86400) AS idle_days,
    d.last_activity_at AS last_activity_at,
    d.expected_close_date AS expected_close_date
FROM open_alerts AS a
INNER JOIN $db.deals_current AS d ON d.deal_id = a.deal_id
WHERE d.status = 'open';
