"""Room to write in a SQLite store, and a reserve that lets deletes free space on a full
disk.

SQLite (in WAL mode) appends every change, a delete too, to its write-ahead log first: on a
full disk a DELETE fails like any write, so space could not be freed through the API. The
store keeps a reserve file beside the database (``<database>-reserve``); a delete that
finds the disk full gives the reserve up and tries again, and the reserve is written again
once the disk has room for it and a write besides.

How much a write may use now (:meth:`Space.room`) is the smaller of the disk's free space
and what the database's page limit (``PRAGMA max_page_count``) leaves, less the space a
missing reserve must get back first: /readyz is ready only while a write of a typical body
fits, not merely a small probe. Other databases (PostgreSQL) report no room figure.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger("allocator.api")
CHUNK = 1 << 20


def sqlite_file(url: sa.URL) -> Path | None:
    """The database file of a SQLite URL (None: another database, or in memory)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()  # type: ignore[arg-type]


class Space:
    def __init__(self, engine: sa.Engine, reserve_bytes: int = 0):
        self.engine = engine
        self.file = sqlite_file(engine.url)
        self.reserve_bytes = reserve_bytes if self.file is not None else 0
        self.reserve = Path(f"{self.file}-reserve") if self.reserve_bytes else None

    def _reserve_missing(self) -> int:
        """Bytes the reserve lacks."""
        if self.reserve is None:
            return 0
        try:
            return max(0, self.reserve_bytes - self.reserve.stat().st_size)
        except FileNotFoundError:
            return self.reserve_bytes

    def room(self) -> int | None:
        """Bytes a write can use now, once the reserve is whole again; None where the
        database does not say (not a SQLite file)."""
        if self.file is None:
            return None
        with self.engine.connect() as c:
            size, count, free, cap = (
                int(c.exec_driver_sql(f"PRAGMA {p}").scalar_one())
                for p in ("page_size", "page_count", "freelist_count", "max_page_count")
            )
        st = os.statvfs(self.file.parent)
        disk = st.f_bavail * st.f_frsize - self._reserve_missing()
        return min((cap - count + free) * size, disk)

    def keep_reserve(self) -> None:
        """Write the reserve if it is missing or short and the disk has room for it; a
        failure leaves none (tried again at the next call)."""
        missing = self._reserve_missing()
        if self.reserve is None or not missing:
            return
        try:
            with open(self.reserve, "ab") as f:
                while missing > 0:
                    f.write(b"\0" * min(CHUNK, missing))
                    missing -= CHUNK
                f.flush()  # the file system allocates the blocks as they are written
        except OSError as exc:
            self.reserve.unlink(missing_ok=True)
            log.warning("cannot write the storage reserve %s: %s", self.reserve, exc)

    def release(self) -> bool:
        """Give the reserve up (a delete needs its space); whether there was one."""
        if self.reserve is None or not self.reserve.exists():
            return False
        self.reserve.unlink(missing_ok=True)
        log.warning("disk full: gave up the storage reserve %s to delete", self.reserve)
        return True
