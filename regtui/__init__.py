"""regtui: open, inspect, verify and serve container image archives."""

__version__ = "0.1.0"
