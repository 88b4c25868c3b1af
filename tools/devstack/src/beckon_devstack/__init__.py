"""Beckon's embedded dev stack and the test fixtures built on it."""
