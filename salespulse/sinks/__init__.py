"""Where accepted events go: ClickHouse (tables, migrations, contract views), the read-only
query endpoint, and Prometheus metrics."""
