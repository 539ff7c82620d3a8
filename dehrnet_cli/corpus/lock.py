"""One corpus job per OUT at a time: `OutDirLock` holds OUT/.dehrnet.lock (an OS file lock through the filelock
package) while a job runs, and OUT/.dehrnet.job says who holds it. A second job on the same OUT refuses in one
line naming the holder. The OS releases the lock when its process dies (SIGKILL included), so a lock left by a
dead job is simply taken by the next one.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from types import TracebackType

from dehrnet_cli.errors import DehrnetError

LOCK_NAME = ".dehrnet.lock"
HOLDER_NAME = ".dehrnet.job"


class OutDirLock:
    """`with OutDirLock(out_dir): ...` runs the block holding OUT's lock, or raises DehrnetError at once."""

    def __init__(self, out_dir: Path) -> None:
        from filelock import FileLock

        self.out_dir = Path(out_dir)
        self._lock = FileLock(self.out_dir / LOCK_NAME, timeout=0)

    def __enter__(self) -> OutDirLock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            raise DehrnetError(f"--out-dir {self.out_dir}: another dehrnet job is writing there ({self._holder()}); "
                               "wait for it to finish, or give another --out-dir") from None
        (self.out_dir / HOLDER_NAME).write_text(
            f"{socket.gethostname()}:{os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8")
        return self

    def _holder(self) -> str:
        try:
            return "job " + (self.out_dir / HOLDER_NAME).read_text(encoding="utf-8").strip()
        except OSError:
            return "its holder is unknown"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        (self.out_dir / HOLDER_NAME).unlink(missing_ok=True)
        self._lock.release()
