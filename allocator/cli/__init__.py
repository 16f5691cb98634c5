"""Stage 8, the command line: ``allocator`` (main.py builds the parser), one module per
command group (solve.py, analysis.py, batch.py, bench.py) and what they share (common.py)."""

from allocator.cli.main import main

__all__ = ["main"]
