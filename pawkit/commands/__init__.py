"""Layer 6 with ``pawkit.cli`` — one module per larger ``pawkit`` command, each with an
``add_command(subparsers)`` that registers it (as ``pawkit.experiments.sweep`` does); cli.py
calls them. Commands import the training stack inside their function, never at module level.
"""
