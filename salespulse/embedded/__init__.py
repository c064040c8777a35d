"""The embedded mode (contract §2): the `up` supervisor, the embedded broker, the terminal dashboard
and the read-only ClickHouse query server over the embedded engine."""
