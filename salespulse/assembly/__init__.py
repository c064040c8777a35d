"""Full contract events from the partial changes CRMs send (issue 14).

The gateway's CRM adapters turn each vendor payload into :class:`~salespulse.assembly.changes.Change`
records (already mapped to contract values); the worker's assembly agent keeps every object's
changes in a Faust table and emits full contract events (:mod:`salespulse.assembly.merge`). Both
sides need these definitions, and streams may not import the gateway, so they live here.
"""
