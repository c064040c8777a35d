"""Webhooks for stall alerts: the message formats, the notifier (retries, at most once per target)
and the delivery log."""
