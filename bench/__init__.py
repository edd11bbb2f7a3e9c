"""Benchmarks (budgets of docs/DESIGN: measured here, never by timed unit tests)."""
