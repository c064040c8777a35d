"""Kafka as salespulse uses it: the topics of contract §3, creating them, consumer groups, reading a
topic to its end, the producer that publishes events and records, and the dead-letter topic."""
