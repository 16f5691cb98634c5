"""LinearProgram: the finished model as a handful of arrays plus the labels that map
rows and columns back to the domain.

Sense: **maximise** ``c @ x + offset`` subject to ``row_lower <= A @ x <= row_upper`` and
``col_lower <= x <= col_upper``, and ``x[j]`` integer where ``integrality[j]`` is set (a
MILP; ``integrality is None`` means an LP). Solvers that minimise are handed ``-c``; every
solver adapter turns its duals back into this maximisation sense (see ``solvers/base.py``).

Column units: an allocation column of a pool allocated in whole units of N GPUs
(``allocation_unit_gpus``) counts those units, so its value times ``col_scale[j] = N`` is
GPUs; every other column has ``col_scale[j] = 1``. :meth:`LinearProgram.x_gpus` turns a
solution into GPUs per allocation column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class RowBlock:
    """A family of constraints, e.g. ``pool-capacity`` over (pool, period).

    ``keys`` maps a dimension name (``pool``, ``segment``, ``period``, ``kind``) to an
    integer index array, one entry per row of the block.
    """

    name: str
    start: int
    stop: int
    keys: dict[str, np.ndarray]
    doc: str = ""

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ColumnIndex:
    """Index arrays of the three column families.

    ``x`` columns are allocations: GPUs of pool ``x_pool`` given to segment ``x_segment``
    in serving mode ``x_mode`` (an index into :attr:`modes`) during period ``x_period``;
    they are ordered by (segment, mode, pool) and then by period, so the column of the
    same triple one period earlier is the previous column.
    ``r`` columns are rented GPUs per (pool, period); ``u`` columns are contract shortfall
    in work units per (segment, period); ``e`` columns GPUs bought (expansion mode);
    ``rsv`` columns GPUs reserved for a segment's customer (take-or-pay); ``tier`` columns
    work units served in a price tier; ``pw`` columns GPUs powered per (pool in a site,
    power level, period); ``rt`` columns GPUs retired per (pool, period). Families come in
    that order: x, r, u, e, rsv, tier, pw, rt.
    """

    x_segment: np.ndarray
    x_mode: np.ndarray
    x_pool: np.ndarray
    x_period: np.ndarray
    x_units_per_gpu: np.ndarray  # work units one GPU delivers over the period
    r_pool: np.ndarray
    r_period: np.ndarray
    u_segment: np.ndarray
    u_period: np.ndarray
    modes: list[tuple[int, str]]  # (segment index, mode name) for each global mode index
    # e columns: GPUs bought into pool e_pool in period e_period (expansion mode), usable
    # from that period on
    e_pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    e_period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # reservations: GPUs of pool rsv_pool reserved for segment rsv_segment's customer in
    # period rsv_period (take-or-pay, dedicated to the customer), for every compatible pool
    # of a segment with a reservation offer in that period
    rsv_segment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rsv_pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rsv_period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # price tiers: work units of tier tier_index (into ScenarioArrays' tiers) of segment
    # tier_segment served in period tier_period (a segment with a demand curve)
    tier_segment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tier_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tier_period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tier_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # in s
    # powered GPUs (issue 27): GPUs of pool pw_pool (a pool in a site) powered in period
    # pw_period; only they (after headroom) can be allocated
    pw_pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pw_period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # the power level of each powered column: -1 full power, else an index into
    # ScenarioArrays' levels (a power cap)
    pw_level: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # retirement: GPUs of pool rt_pool retired in period rt_period (gone from then on)
    rt_pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rt_period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_x(self) -> int:
        return int(self.x_segment.size)

    @property
    def n_r(self) -> int:
        return int(self.r_pool.size)

    @property
    def n_u(self) -> int:
        return int(self.u_segment.size)

    @property
    def r_offset(self) -> int:
        return self.n_x

    @property
    def u_offset(self) -> int:
        return self.n_x + self.n_r

    @property
    def n_e(self) -> int:
        return int(self.e_pool.size)

    @property
    def e_offset(self) -> int:
        return self.n_x + self.n_r + self.n_u

    @property
    def n_rsv(self) -> int:
        return int(self.rsv_segment.size)

    @property
    def rsv_offset(self) -> int:
        return self.e_offset + self.n_e

    @property
    def n_tier(self) -> int:
        return int(self.tier_segment.size)

    @property
    def tier_offset(self) -> int:
        return self.rsv_offset + self.n_rsv

    @property
    def n_pw(self) -> int:
        return int(self.pw_pool.size)

    @property
    def pw_offset(self) -> int:
        return self.tier_offset + self.n_tier

    @property
    def n_rt(self) -> int:
        return int(self.rt_pool.size)

    @property
    def rt_offset(self) -> int:
        return self.pw_offset + self.n_pw

    @property
    def n_columns(self) -> int:
        """Columns of the scenario's own families (a derived model may append more)."""
        return self.rt_offset + self.n_rt


@dataclass
class LinearProgram:
    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    columns: ColumnIndex
    blocks: list[RowBlock]
    offset: float = 0.0
    warnings: list[str] = field(default_factory=list)
    integrality: np.ndarray | None = None  # bool per column: integer; None = an LP
    col_scale: np.ndarray | None = None  # GPUs per unit of each column; None = all 1

    @property
    def is_mip(self) -> bool:
        return self.integrality is not None and bool(self.integrality.any())

    @property
    def num_integer(self) -> int:
        return 0 if self.integrality is None else int(self.integrality.sum())

    def x_gpus(self, x: np.ndarray) -> np.ndarray:
        """GPUs per allocation column from a solution ``x`` in the model's column units."""
        xs = x[: self.columns.n_x]
        return xs if self.col_scale is None else xs * self.col_scale[: self.columns.n_x]

    def relaxed(self) -> LinearProgram:
        """The same model with integrality dropped (its LP relaxation)."""
        return replace(self, integrality=None, warnings=list(self.warnings))

    def with_integers_fixed(self, x: np.ndarray) -> LinearProgram:
        """The LP left when every integer column is fixed at ``x`` rounded to the nearest
        integer (within its bounds): the continuous decisions stay free."""
        if self.integrality is None:
            return self.relaxed()
        fixed = np.clip(np.round(x), self.col_lower, self.col_upper)
        lower = np.where(self.integrality, fixed, self.col_lower)
        upper = np.where(self.integrality, fixed, self.col_upper)
        return replace(
            self,
            col_lower=lower,
            col_upper=upper,
            integrality=None,
            warnings=list(self.warnings),
        )

    @property
    def num_cols(self) -> int:
        return int(self.c.size)

    @property
    def num_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.A.nnz)

    def block(self, name: str) -> RowBlock | None:
        for b in self.blocks:
            if b.name == name:
                return b
        return None

    def objective(self, x: np.ndarray) -> float:
        return float(self.c @ x + self.offset)

    def __repr__(self) -> str:
        blocks = ", ".join(f"{b.name}:{b.size}" for b in self.blocks)
        ints = f", integer={self.num_integer}" if self.is_mip else ""
        return (
            f"LinearProgram(cols={self.num_cols}, rows={self.num_rows}, nnz={self.nnz}{ints}, "
            f"blocks=[{blocks}])"
        )


def column_periods(lp: LinearProgram) -> np.ndarray:
    """The period of each column, -1 where a column is not tied to one period (expansion
    columns, and columns a derived model appends beyond the scenario's)."""
    c = lp.columns
    out = np.full(lp.num_cols, -1, dtype=np.int64)
    out[: c.e_offset] = np.concatenate([c.x_period, c.r_period, c.u_period])
    if c.n_rsv and lp.num_cols >= c.n_columns:
        out[c.rsv_offset : c.tier_offset] = c.rsv_period
    if c.n_tier and lp.num_cols >= c.n_columns:
        out[c.tier_offset : c.pw_offset] = c.tier_period
    if c.n_pw and lp.num_cols >= c.n_columns:
        out[c.pw_offset : c.rt_offset] = c.pw_period
    # retirement columns (rt) stay -1: a GPU retired stays retired (the pool-powered rows
    # join the periods), so a model with retirement is solved whole
    return out


def row_spans(lp: LinearProgram, periods: int) -> np.ndarray:
    """(num_rows, 2): the first and last period of each row's columns; (0, periods - 1)
    for a row with a column tied to no period, or with no column."""
    return spans(lp.A, column_periods(lp), periods)


def spans(A: sp.csr_matrix, col_period: np.ndarray, periods: int) -> np.ndarray:
    """(rows of A, 2): the first and last of ``col_period`` over each row's columns;
    (0, periods - 1) where one is -1 or the row is empty."""
    cp = col_period[A.indices]
    starts = A.indptr[:-1]
    out = np.zeros((A.shape[0], 2), dtype=np.int64)
    out[:, 1] = periods - 1
    if cp.size == 0:
        return out
    # a sentinel past the end: an empty row's start may be cp.size
    lo = np.minimum.reduceat(np.append(cp, np.iinfo(np.int64).max), starts)
    hi = np.maximum.reduceat(np.append(cp, -1), starts)
    ok = (np.diff(A.indptr) > 0) & (lo >= 0)
    out[ok, 0], out[ok, 1] = lo[ok], hi[ok]
    return out
