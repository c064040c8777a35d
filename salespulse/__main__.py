"""``python -m salespulse`` runs the CLI."""

from salespulse.cli.main import main

main()
