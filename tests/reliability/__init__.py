"""Reliability: isolation, refusals, hostile input, faults, load and upgrades."""
