"""Runs graphs and controls tasks; knows nothing of HTTP."""
