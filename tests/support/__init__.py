"""Shared test helpers (no fixtures here; fixtures live in conftest.py files)."""
