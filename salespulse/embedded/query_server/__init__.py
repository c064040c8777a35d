"""ClickHouse's HTTP interface over the embedded chDB engine (``http``), so BI tools can query the
embedded store: SQL checks (``sql_guard``), body compression (``compression``), running a request
(``engine``), errors in ClickHouse's words (``errors``), and the worker service (``service``)."""
