"""The manager page (SPEC §9): a read-only web page and its JSON API over the contract views.

``salespulse ui`` serves it (``app``); ``params`` validates what a request asks for, ``queries``
reads the views, ``kpis`` derives the ratios, ``auth`` guards access, ``connection`` says where
ClickHouse is. The page itself is static: ``static/`` (HTML, ES modules, CSS, the zh/en labels
and the vendored Apache ECharts).
"""
