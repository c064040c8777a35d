"""The CRM traffic generator: an org, customers and targets (``company``), the simulation of their
sales activity (``simulation``), a deterministic history (``history``) and live traffic (``live``)."""

from salespulse.simulator.company import CHINA_STANDARD_TIME, SimulatedData, SimulationOptions
from salespulse.simulator.history import generate_history
from salespulse.simulator.live import LiveSummary, run_live

__all__ = [
    "CHINA_STANDARD_TIME",
    "LiveSummary",
    "SimulatedData",
    "SimulationOptions",
    "generate_history",
    "run_live",
]
