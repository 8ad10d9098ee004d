"""The built web console (console/dist, made by `make console`) put where ConsoleFunction serves it
from: the console bucket, under console/. `lighthouse up` does it at start, `lighthouse deploy` after
the stack is up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lighthouse.console.assets import PREFIX, content_type

CONSOLE_DIST = Path(__file__).resolve().parents[2] / "console" / "dist"


class ConsoleNotBuilt(RuntimeError):
    pass


def publish(s3: Any, bucket: str, dist: Path = CONSOLE_DIST) -> int:
    """Upload every servable file of `dist`; answer how many. Refuses a directory without index.html."""
    if not (dist / "index.html").is_file():
        raise ConsoleNotBuilt(f"{dist}/index.html is missing: build the console with `make console`")
    published = 0
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        name = path.relative_to(dist).as_posix()
        kind = content_type(name)
        if kind is None:
            continue  # the console function would not serve it (source maps of other types, licences)
        s3.put_object(Bucket=bucket, Key=PREFIX + name, Body=path.read_bytes(), ContentType=kind)
        published += 1
    return published
