"""`salespulse bench`: the pipeline measured beside its baselines (a bare consumer, a bare Faust loop)."""
