"""Where accepted data and alerts go: ClickHouse (``clickhouse/``) and webhooks (``webhooks/``)."""
