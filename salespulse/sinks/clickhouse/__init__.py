"""ClickHouse: the client, the sink that writes accepted batches, the rows it writes, the versioned
migrations and the contract views (``sql/``)."""
