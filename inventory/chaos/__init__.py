"""Fault-injection workload: the bank test for the inventory (see docs/reliability.md)."""
