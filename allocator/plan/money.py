"""Money as people read it: one formatter for the summary, charts, notebooks and CLI
(:mod:`allocator.numbers` holds it, with the other number formats)."""

from __future__ import annotations

from allocator.numbers import money

__all__ = ["money"]
