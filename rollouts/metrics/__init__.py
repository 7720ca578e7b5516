"""Metrics: what the controller exposes to Prometheus (prometheus.py)."""
