"""Layer 4 — sweeps of training runs: plan, run, results I/O, report.

Imports ``pawkit.train`` and everything below; only the CLI imports it.
"""
