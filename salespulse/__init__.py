"""salespulse: CRM activity events from Kafka to live sales KPIs in ClickHouse.

The package follows the data's path: ``schemas`` (what an event is), ``streams``
(the Faust app that consumes, validates and batches events), ``sinks`` (ClickHouse
tables, the contract views, metrics).
"""

__version__ = "0.1.0"
