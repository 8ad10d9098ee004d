"""The console's static files: served from S3 (the console bucket, prefix `console/`) through the
API's own origin, so the session cookie and the API share one origin and no CORS is needed."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

PREFIX = "console/"
INDEX = "index.html"
MAX_ASSET_BYTES = 5 * 1024 * 1024
# Scripts only from this origin (no inline script, no eval); styles from this origin (scripts may
# still set element.style); data/WebSocket connections to this origin (and the WebSocket API,
# which may be another host or port); nothing may frame the console.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self' ws: wss:; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_ASSET = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_./-]{0,200}$")


def asset_key(path: str | None) -> str | None:
    """The S3 key of a requested asset; None for a path that is not one (traversal, odd characters)."""
    name = (path or "").strip("/") or INDEX
    if not _ASSET.fullmatch(name) or ".." in name or "//" in name:
        return None
    return PREFIX + name


def base_href(request_path: str) -> str:
    """Where the page's relative URLs start: the console's own folder, whatever the stage prefix.

    `/Prod/console` -> `console/`; `/console/` and `/console/index.html` -> `./`.
    """
    return "./" if request_path.endswith(("/", "/" + INDEX)) else "console/"


def content_type(key: str) -> str | None:
    dot = key.rfind(".")
    return CONTENT_TYPES.get(key[dot:].lower()) if dot >= 0 else None


def response(status: int, body: str, content_type_value: str, cache: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**SECURITY_HEADERS, "Content-Type": content_type_value, "Cache-Control": cache},
        "body": body,
    }


def not_found(what: str) -> dict[str, Any]:
    return response(404, f"no console asset {what[:80]!r}\n", "text/plain; charset=utf-8", "no-store")


class ConsoleAssets:
    """Reads the built console out of its bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def serve(self, path: str | None, request_path: str) -> dict[str, Any]:
        key = asset_key(path)
        kind = content_type(key) if key else None
        body = self._read(key) if key and kind else None
        if key is None or kind is None or body is None:
            return not_found(path or "")
        if key.endswith(".html"):
            # It names the hashed bundles, so it is re-read each time; the bundles never change.
            return response(200, body.replace("%BASE%", base_href(request_path)), kind, "no-cache")
        return response(200, body, kind, "public, max-age=31536000, immutable")

    def _read(self, key: str) -> str | None:
        try:
            found = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchBucket"):
                return None
            raise
        if found.get("ContentLength", 0) > MAX_ASSET_BYTES:
            return None
        return str(found["Body"].read().decode())
