"""The `salespulse` command line (``main``), one module per command group."""
