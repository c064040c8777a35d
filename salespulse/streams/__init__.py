"""Stream processing: the Faust worker, batch ingest, the stall monitor, the alert notifier,
reference tables, follow-ups, health, metrics and fault injection."""
