-- Migration 4: the order of an alert's transitions (contract §6).
--
-- Late data can call for a transition whose event time is earlier than one already recorded
-- (an episode that escalated before the activity that ended it arrived). `sequence` numbers an
-- alert's transitions in the order they were recorded, so its latest state is the last one;
-- `previous_severity` is the severity before the transition ('' for opened).
ALTER TABLE $db.stall_alert_log ADD COLUMN IF NOT EXISTS sequence UInt32 DEFAULT 0;
ALTER TABLE $db.stall_alert_log ADD COLUMN IF NOT EXISTS previous_severity LowCardinality(String) DEFAULT '';
