"""``python -m salespulse`` runs the CLI."""

from salespulse.streams.cli import main

main()
