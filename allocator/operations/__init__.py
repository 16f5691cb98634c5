"""Stage 8, operations: a plan turned into the quotas schedulers enforce (quotas.py, the
mapping in mapping.py, one emitter per scheduler in emit.py), and what really ran read back
(usage.py). Imports scenario and plan; never the CLI or the service."""

from allocator.operations.mapping import Mapping, MappingError, load_mapping
from allocator.operations.quotas import QuotaError, QuotaSet, compute_quotas

__all__ = [
    "Mapping",
    "MappingError",
    "QuotaError",
    "QuotaSet",
    "compute_quotas",
    "load_mapping",
]
