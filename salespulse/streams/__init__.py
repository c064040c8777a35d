"""The Faust app: settings, topics, the batch ingest service, the embedded supervisor and the CLI."""
