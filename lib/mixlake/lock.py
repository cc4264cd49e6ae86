"""One pipeline writes a lake at a time: an advisory lease at ``${lake}/_mixlake.lock``.

The lease is a small JSON object — owner (run id, host, pid), acquired and expiry times — written when a run starts
and renewed by a daemon thread every ``lease_seconds / 4`` while it runs; the run deletes it when it ends, also when
it fails. A second run on the same lake fails fast with :class:`LakeLocked`, naming the holder. A lease is taken over
when it has expired (its holder stopped renewing it: killed, lost its network) or, on the same host, when the holder
process no longer exists — so a crashed run never blocks the next one for long.

Locally the lease is created with ``O_EXCL`` (atomic). On an object store it is written and read back after a short
pause; two runs that start within that pause could both proceed — Delta's optimistic concurrency then fails one of
their conflicting commits instead (the advisory lease narrows that window; it does not replace Delta's guarantees).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mixlake import storage
from mixlake.errors import ConfigError
from mixlake.storage import S3Config

log = logging.getLogger(__name__)
LOCK_NAME = "_mixlake.lock"


class LakeLocked(RuntimeError):
    """Another mixlake run holds the lake's lease."""


@dataclass
class LockConfig:
    """``lock``: the lake lease (see :mod:`mixlake.lock`)."""

    enabled: bool = True
    lease_seconds: int = 600  # a holder that stops renewing loses the lease after this long

    def __post_init__(self) -> None:
        if self.lease_seconds < 4:
            raise ConfigError(f"lock.lease_seconds must be >= 4, got {self.lease_seconds}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LakeLease:
    """Context manager holding the lease on ``lake`` for ``run_id``."""

    def __init__(self, lake: str, run_id: str, cfg: LockConfig, s3: S3Config | None = None) -> None:
        self.uri = storage.join(lake, LOCK_NAME)
        self.run_id, self.cfg, self.s3 = run_id, cfg, s3
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> dict[str, Any]:
        now = time.time()
        return {"run_id": self.run_id, "host": self.host, "pid": self.pid, "renewed_at": now,
                "expires_at": now + self.cfg.lease_seconds}

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(storage.read_bytes(self.uri, self.s3))
        except FileNotFoundError:
            return None
        except ValueError:  # a torn or foreign file: treat as a stale lease
            return {}

    def holder_is_stale(self, held: dict[str, Any]) -> bool:
        if not held or held.get("expires_at", 0) < time.time():
            return True
        return held.get("host") == self.host and not _alive(int(held.get("pid", -1)))

    def _create(self) -> bool:
        data = json.dumps(self._body()).encode()
        if storage.is_local(self.uri) or self.uri.startswith(("file:", "dbfs:")):
            path = storage.filesystem(self.uri)[1]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        storage.write_bytes(self.uri, data, self.s3)
        time.sleep(1.0)  # let a racing writer's PUT land, then see whose lease stands
        mine = self._read()
        return bool(mine) and mine.get("run_id") == self.run_id

    def acquire(self) -> None:
        for _ in range(3):
            if self._create():
                break
            held = self._read()
            if held is None:
                continue  # released between our attempt and the read
            if not self.holder_is_stale(held):
                until = time.strftime("%H:%M:%S", time.localtime(held.get("expires_at", 0)))
                raise LakeLocked(
                    f"lake {self.uri.rsplit('/', 1)[0]} is being written by mixlake run {held.get('run_id')} "
                    f"(host {held.get('host')}, pid {held.get('pid')}; lease renewed until {until}). Wait for it to "
                    f"finish; if that run is dead on another host, its lease expires by itself, or delete {self.uri}.")
            log.warning("taking over the stale lake lease of run %s (host %s, pid %s)", held.get("run_id"),
                        held.get("host"), held.get("pid"))
            storage.delete_file(self.uri, self.s3)
        else:
            raise LakeLocked(f"could not acquire {self.uri}: other runs keep taking it")
        self._thread = threading.Thread(target=self._renew, name="mixlake-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.cfg.lease_seconds / 4):
            held = self._read()
            if not held or held.get("run_id") != self.run_id:
                log.error("lost the lake lease %s to %s", self.uri, held and held.get("run_id"))
                return
            storage.write_bytes(self.uri, json.dumps(self._body()).encode(), self.s3)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self._read()
        if held and held.get("run_id") == self.run_id:
            storage.delete_file(self.uri, self.s3)

    def __enter__(self) -> LakeLease:
        if self.cfg.enabled:
            self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.cfg.enabled:
            self.release()
