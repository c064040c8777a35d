"""Test harness: real processes (embedded broker, salespulse workers) and ways to drive them."""
