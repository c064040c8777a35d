"""The ingestion gateway (SPEC §8): CRMs send HTTP, the gateway validates and publishes to Kafka."""
