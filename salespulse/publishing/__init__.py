"""Records from files onto the topics: JSON Lines (`salespulse publish`) and targets from a
spreadsheet (`salespulse targets import`)."""
