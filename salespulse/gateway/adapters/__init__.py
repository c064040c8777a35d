"""CRM adapters: a vendor's webhook body → partial changes in contract terms (issue 14).

One module per CRM (hubspot, salesforce, pipedrive), each with ``translate(body, source)``
returning a :class:`~salespulse.gateway.adapters.common.Translation`. Adapters only read and
map; the full contract events are assembled by the worker (``salespulse.assembly``).
"""
