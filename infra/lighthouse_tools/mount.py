"""`lighthouse mount DIR --project P`: the views as a read-only FUSE filesystem (mfusepy over libfuse3).

    DIR/current/<path>             the annotated current view of each file
    DIR/history/<ISO instant>/<path>  each file as it was at that instant (any instant may be named)
    DIR/streams/<kind>:<id>[@<instant>]  a stream's state as JSON
    DIR/context/<agent>/context.json  what the agent is involved in now
    DIR/shadow/<path>              experts' suggestions about the file (`commands`: about Bash)

Everything is read through the HTTP API, so the mount works against AWS as well as the embedded
cloud. Answers are cached for `cache_seconds` (past instants' views for longer: they cannot change).
Sizes are the views' real sizes, times their last change, so `ls -l`, `cat`, `grep -r` and `diff -r`
behave. Every path is checked here (no `..`, control characters or escapes) and again by the API.
"""

from __future__ import annotations

import errno
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import mfusepy as fuse

from lighthouse.apiclient import ApiError, LighthouseClient
from lighthouse.errors import LighthouseError
from lighthouse.history.logic import iso, parse_instant

TOP = ("current", "history", "streams", "context", "shadow")
PREFETCH_WORKERS = 4
FILE_MODE = stat.S_IFREG | 0o444
DIR_MODE = stat.S_IFDIR | 0o555


@dataclass
class Cached:
    value: Any
    until: float


class ViewsFS(fuse.Operations):  # type: ignore[misc]
    def __init__(self, client: LighthouseClient, project: str, agent_id: str, cache_seconds: float = 5.0) -> None:
        self._client = client
        self._project = project
        self._agent = agent_id
        self._ttl = cache_seconds
        self._cache: dict[str, Cached] = {}
        self._inflight: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._started = time.time()
        # Listing a directory fetches its files' views ahead of the reads that usually follow
        # (ls -l, grep -r, diff -r read every file): one request at a time would leave the API idle.
        self._prefetch = ThreadPoolExecutor(max_workers=PREFETCH_WORKERS, thread_name_prefix="lighthouse-prefetch")

    # ---- the API, cached --------------------------------------------------------------------------

    def _cached(self, key: str, load: Callable[[], Any], ttl: float | None = None, stale_ok: bool = False) -> Any:
        """The cached answer, else one load shared by every caller asking for it meanwhile. With
        `stale_ok`, an expired answer is returned at once and refreshed in the background."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and (hit.until > time.monotonic() or (stale_ok and key in self._inflight)):
                return hit.value
            future, owner = self._join(key)
        if owner and hit is not None and stale_ok:
            self._prefetch.submit(self._load, key, load, ttl, future)
            return hit.value
        if owner:
            self._load(key, load, ttl, future)
        return future.result()

    def _join(self, key: str) -> tuple[Future[Any], bool]:
        """The load in flight for `key` (False), or a new one the caller owns (True). Lock held."""
        waiting = self._inflight.get(key)
        if waiting is not None:
            return waiting, False
        waiting = self._inflight[key] = Future()
        return waiting, True

    def _load(self, key: str, load: Callable[[], Any], ttl: float | None, future: Future[Any]) -> None:
        try:
            value = load()
        except BaseException as error:  # the waiters get it too
            future.set_exception(error)
        else:
            with self._lock:
                self._cache[key] = Cached(value, time.monotonic() + (self._ttl if ttl is None else ttl))
            future.set_result(value)
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def _tree(self, instant: str | None) -> dict[str, float]:
        """{path: changed_at} of the project's files (now, or at `instant`). Not to be modified."""

        def load() -> dict[str, float]:
            suffix = f"?at={quote(instant)}" if instant else ""
            files = self._client.request("GET", f"/history/{quote(self._project)}/tree{suffix}")["files"]
            return {entry["path"]: float(entry["changed_at"]) for entry in files}

        tree: dict[str, float] = self._cached(f"tree:{instant}", load, self._frozen_ttl(instant), stale_ok=True)
        return tree

    def _frozen_ttl(self, instant: str | None) -> float | None:
        """A past instant's answer never changes once that instant is past (allowing a minute's skew)."""
        if instant is None:
            return None
        return 3600.0 if parse_instant(instant) < time.time() - 60 else None

    def _view(self, url: str, ttl: float | None = None) -> tuple[bytes, float]:
        def load() -> tuple[bytes, float]:
            text, headers = self._client.text(url)
            modified = headers.get("Last-Modified") or headers.get("last-modified")
            at = parsedate_to_datetime(modified).timestamp() if modified else self._started
            return text.encode(), at

        try:
            cached: tuple[bytes, float] = self._cached(url, load, ttl)
            return cached
        except ApiError as error:
            raise fuse.FuseOSError(errno.ENOENT if error.status in (404, 422, 400) else errno.EACCES) from None

    # ---- paths ----------------------------------------------------------------------------------

    @staticmethod
    def _parts(path: str) -> list[str]:
        parts = [part for part in path.split("/") if part]
        for part in parts:
            if part in (".", "..") or any(ord(c) < 32 for c in part) or "\\" in part:
                raise fuse.FuseOSError(errno.ENOENT)
        return parts

    def _resolve(self, path: str) -> tuple[str, Any]:
        """("dir", names) or ("file", (url, frozen)) for a mount path."""
        parts = self._parts(path)
        if not parts:
            return "dir", list(TOP)
        views: dict[str, Callable[[list[str]], tuple[str, Any]]] = {
            "current": self._current, "shadow": self._shadow, "history": self._history,
            "streams": self._streams, "context": self._context,
        }  # fmt: skip
        if parts[0] not in views:
            raise fuse.FuseOSError(errno.ENOENT)
        return views[parts[0]](parts[1:])

    def _current(self, rest: list[str]) -> tuple[str, Any]:
        return self._in_tree(rest, None, lambda p: f"/views/{quote(self._project)}/current/{p}")

    def _shadow(self, rest: list[str]) -> tuple[str, Any]:
        tree = dict(self._tree(None), commands=0.0)
        return self._in_listing(rest, tree, lambda p: f"/views/{quote(self._project)}/shadow/{p}")

    def _history(self, rest: list[str]) -> tuple[str, Any]:
        if not rest:
            return "dir", sorted({iso(at) for at in self._tree(None).values()})
        instant = rest[0]
        try:
            parse_instant(instant)
        except LighthouseError:  # not an instant: no such directory
            raise fuse.FuseOSError(errno.ENOENT) from None
        segment = quote(instant, safe="")
        return self._in_tree(
            rest[1:], instant, lambda p: f"/views/{quote(self._project)}/history/{segment}/{p}", frozen=True
        )

    def _streams(self, rest: list[str]) -> tuple[str, Any]:
        if not rest:
            return "dir", []
        if len(rest) != 1:
            raise fuse.FuseOSError(errno.ENOENT)
        stream, _, at = rest[0].partition("@")
        query = f"?at={quote(at, safe='')}" if at else ""
        return "file", (f"/views/{quote(self._project)}/streams/{quote(stream, safe=':')}{query}", bool(at))

    def _context(self, rest: list[str]) -> tuple[str, Any]:
        if not rest:
            return "dir", [self._agent]
        if len(rest) == 1:
            return "dir", ["context.json"]
        if len(rest) == 2 and rest[1] == "context.json":
            return "file", (f"/views/context/{quote(rest[0], safe=':')}", False)
        raise fuse.FuseOSError(errno.ENOENT)

    def _in_tree(
        self, rest: list[str], instant: str | None, url: Callable[[str], str], frozen: bool = False
    ) -> tuple[str, Any]:
        return self._in_listing(rest, self._tree(instant), url, frozen)

    @staticmethod
    def _in_listing(
        rest: list[str], files: dict[str, float], url: Callable[[str], str], frozen: bool = False
    ) -> tuple[str, Any]:
        prefix = "/".join(rest)
        if prefix in files:
            return "file", (url("/".join(quote(part, safe="") for part in rest)), frozen)
        below = prefix + "/" if prefix else ""
        names = sorted({path[len(below) :].split("/")[0] for path in files if path.startswith(below)})
        if not names:
            raise fuse.FuseOSError(errno.ENOENT)
        return "dir", names

    # ---- FUSE operations ----------------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        kind, target = self._resolve(path)
        if kind == "dir":
            at = self._started
            return {"st_mode": DIR_MODE, "st_nlink": 2, "st_size": 0, "st_mtime": at, "st_ctime": at, "st_atime": at}
        url, frozen = target
        content, modified = self._view(url, 3600.0 if frozen else None)
        return {
            "st_mode": FILE_MODE, "st_nlink": 1, "st_size": len(content),
            "st_mtime": modified, "st_ctime": modified, "st_atime": modified,
        }  # fmt: skip

    def readdir(self, path: str, fh: int) -> Iterable[str]:
        kind, names = self._resolve(path)
        if kind != "dir":
            raise fuse.FuseOSError(errno.ENOTDIR)
        for name in names:
            self._prefetch.submit(self._warm, f"{path.rstrip('/')}/{name}")
        return [".", "..", *names]

    def _warm(self, path: str) -> None:
        """Fetch a file's view into the cache (errors are the later read's to report)."""
        try:
            kind, target = self._resolve(path)
            if kind == "file":
                self._view(target[0], 3600.0 if target[1] else None)
        except (fuse.FuseOSError, ApiError, OSError):
            return

    def open(self, path: str, flags: int) -> int:
        if flags & (0o1 | 0o2):  # O_WRONLY | O_RDWR: the views are read-only
            raise fuse.FuseOSError(errno.EROFS)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        kind, target = self._resolve(path)
        if kind != "file":
            raise fuse.FuseOSError(errno.EISDIR)
        url, frozen = target
        content, _ = self._view(url, 3600.0 if frozen else None)
        return content[offset : offset + size]

    def close(self) -> None:
        """Drop the prefetches not started yet: an unmount does not wait for a directory's worth."""
        self._prefetch.shutdown(wait=False, cancel_futures=True)

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_blocks": 0, "f_bavail": 0, "f_bfree": 0, "f_namemax": 255}


def mount(client: LighthouseClient, directory: str, project: str, agent_id: str, cache_seconds: float) -> None:
    """Serve until unmounted or interrupted (Ctrl+C unmounts cleanly: libfuse's signal handlers)."""
    views = ViewsFS(client, project, agent_id, cache_seconds)
    try:
        fuse.FUSE(views, directory, foreground=True, ro=True, nothreads=False, fsname=f"lighthouse-{project}")
    finally:
        views.close()
