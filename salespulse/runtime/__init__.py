"""Running salespulse processes on one machine: child processes, ports, waiting for a condition,
reading a process's /metrics. Shared by the embedded supervisor, the benchmark and the tests."""
