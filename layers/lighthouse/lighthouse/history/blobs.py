"""Content-addressed file contents in S3: `blobs/<sha256>`, zlib-compressed, each content stored once.

A blob is either the full content or a delta on a full one (its `base`, in the object's metadata
and header), never a delta on a delta: reading any version costs at most two GETs, whatever the
number of versions. Blobs never change once written, so the cache below is always right.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.errors import LighthouseError, NotFound
from lighthouse.history import logic

PREFIX = "blobs/"


class IntegrityError(LighthouseError):
    """Stored content does not hash to what the history recorded: an error, never a wrong answer."""

    code = "HISTORY_INTEGRITY_ERROR"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    base: str | None  # the full blob this delta applies to; None for a full blob


class _Cache:
    """Decoded contents by sha256, least recently used out first, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self._max // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += len(value)
            while self._size > self._max:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


class BlobStore:
    def __init__(self, s3: Any, bucket: str, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.cache = _Cache(cache_bytes)

    def stored(self, digest: str) -> StoredBlob | None:
        """The blob of this content if it is stored (its base from the object's metadata)."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=PREFIX + digest)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        base = head.get("Metadata", {}).get("base") or None
        return StoredBlob(digest, base)

    def put_full(self, content: bytes) -> StoredBlob:
        return self._put(content, {"kind": "full"}, content, None)

    def put_delta(self, content: bytes, base: str, payload: bytes) -> StoredBlob:
        """`content` stored as `payload` (logic.delta on the full blob `base`)."""
        return self._put(content, {"kind": "delta", "base": base}, payload, base)

    def _put(self, content: bytes, header: dict[str, Any], payload: bytes, base: str | None) -> StoredBlob:
        digest = logic.sha256(content)
        header |= {"sha256": digest, "size": len(content)}
        body = zlib.compress(json.dumps(header).encode() + b"\n" + payload, 6)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=PREFIX + digest,
            Body=body,
            ContentType="application/octet-stream",
            Metadata={"base": base} if base else {},
        )
        self.cache.put(digest, content)
        return StoredBlob(digest, base)

    def read(self, digest: str) -> bytes:
        """The content whose sha256 is `digest`, verified."""
        cached = self.cache.get(digest)
        if cached is not None:
            return cached
        header, payload = self._fetch(digest)
        if header.get("kind") == "delta":
            base_digest = str(header["base"])
            base = self.cache.get(base_digest)
            if base is None:
                base_header, base = self._fetch(base_digest)
                if base_header.get("kind") != "full":
                    raise IntegrityError(f"blob {digest} names {base_digest} as its base, which is not a full copy")
                self._verify(base_digest, base)
                self.cache.put(base_digest, base)
            content = logic.apply_delta(base, payload)
        else:
            content = payload
        self._verify(digest, content)
        self.cache.put(digest, content)
        return content

    def _fetch(self, digest: str) -> tuple[dict[str, Any], bytes]:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=PREFIX + digest)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise NotFound(f"the content {digest} is recorded but its blob is missing") from error
            raise
        try:
            raw = zlib.decompress(body)
            head, _, payload = raw.partition(b"\n")
            return json.loads(head), payload
        except (zlib.error, ValueError) as error:
            raise IntegrityError(f"blob {digest} is not readable: {error}") from error

    @staticmethod
    def _verify(digest: str, content: bytes) -> None:
        actual = logic.sha256(content)
        if actual != digest:
            raise IntegrityError(
                f"stored content hashes to {actual}, not the recorded {digest}", {"expected": digest, "actual": actual}
            )
