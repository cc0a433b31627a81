"""Benchmarks: `make bench` (python -m bench) runs them all; figures are printed, never asserted."""
