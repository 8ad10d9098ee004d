"""History benchmark (issue #17). Run with `make bench` (or `python -m tests.perf.bench_history`).

1. Reconstruction of a file at a random past instant, at 10, 1,000 and 10,000 versions (each version
   one changed line of a 200-line file, recorded through the service as the hook records it): p50/p99
   with the blob cache emptied before each read (one Query on the version index, at most two blob
   GETs, delta applied, sha256 verified) and with it warm. Goal: p99 <= 50 ms at 10,000 versions.
2. The `current` view of a 2,000-line Python file: rendered from scratch (tree-sitter parse, anchors,
   security rules) and from the view cache, in-process, and over HTTP.
3. `grep -r` over a 1,000-file project through `lighthouse mount` vs over the same files on disk.

Figures are compared to a conditional PutItem over HTTP measured in the same run.
BENCH_QUICK=1 stores 2,000 versions instead of 10,000 and runs fewer samples; `--parts
reconstruction,current,grep` runs some parts (their figures replace those in the results file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.history.service import Content
from lighthouse.history.views import HistoryViews
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.stats import RESULTS, floor, summarize, write

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = (10, 1_000, 2_000) if QUICK else (10, 1_000, 10_000)
SAMPLES = 100 if QUICK else 300
GREP_FILES = 1_000
LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")
ADMIN = Principal("bench", "admin", 0, 2**40, "bench")


def seed_versions(parts: Components, path: str, versions: int) -> float:
    lines = [f"value_{n} = {n}\n" for n in range(200)]
    began = time.perf_counter()
    for version in range(versions):
        lines[random.randrange(len(lines))] = f"value_{version} = {random.random()}\n"
        parts.history.record("bench", path, Content("".join(lines).encode()), agent="bench", source="bench")
    return (time.perf_counter() - began) / versions * 1000


def reconstruction(parts: Components) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    history = parts.history
    for size in SIZES:
        path = f"versions/{size}.py"
        write_ms = seed_versions(parts, path, size)
        rows: list[float] = []
        cursor = None
        while True:
            page, cursor = history.index.versions("bench", path, 1000, cursor)
            rows.extend(row.at for row in page)
            if not cursor:
                break
        cold, warm = [], []
        for _ in range(SAMPLES):
            instant = random.choice(rows)
            history.blobs.cache.clear()
            began = time.perf_counter()
            row, content = history.content_at("bench", path, instant)
            cold.append((time.perf_counter() - began) * 1000)
            assert row is not None
            assert content is not None
            began = time.perf_counter()
            history.content_at("bench", path, instant)
            warm.append((time.perf_counter() - began) * 1000)
        figures[str(size)] = {
            "versions": len(rows),
            "record_ms_mean": round(write_ms, 2),
            "uncached": summarize(cold),
            "cached_blobs": summarize(warm),
            "goal_p99_ms": 50,
            "met": summarize(cold)["p99_ms"] <= 50,
        }
        print(f"reconstruction at {size} versions: {json.dumps(figures[str(size)])}", flush=True)
    return figures


def python_file(lines: int) -> bytes:
    out = ["import subprocess\nimport yaml\n\n"]
    while sum(chunk.count("\n") for chunk in out) < lines:
        n = len(out)
        out.append(
            f"class Service{n}:\n    def run(self, cmd):\n        return subprocess.run(cmd, shell=True)\n\n"
            f"    def load(self, text):\n        return yaml.safe_load(text)\n\n\n"
            f"def helper_{n}(x):\n    return x * {n}\n\n\n"
        )
    return "".join(out).encode()


def current_view(cloud: LocalCloud, parts: Components, token: str) -> dict[str, Any]:
    content = python_file(2_000)
    parts.history.record("bench", "big/service.py", Content(content), agent="bench", source="bench")
    uncached, cached = [], []
    for _ in range(20 if QUICK else 50):
        views = HistoryViews(parts.history, parts.history_views._context)
        began = time.perf_counter()
        text = views.current(ADMIN, "bench", "big/service.py").text
        uncached.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        views.current(ADMIN, "bench", "big/service.py")
        cached.append((time.perf_counter() - began) * 1000)
    http = []
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(50 if QUICK else 200):
        began = time.perf_counter()
        response = requests.get(f"{cloud.api_url}/views/bench/current/big/service.py", headers=headers, timeout=30)
        http.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
    return {
        "lines": content.count(b"\n"),
        "view_bytes": len(text),
        "anchors": text.count("AST_ANCHOR:") // 2,
        "uncached_in_process": summarize(uncached),
        "cached_in_process": summarize(cached),
        "http_after_first": summarize(http),
    }


def grep_through_mount(cloud: LocalCloud, parts: Components, secret: str, state_file: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        disk, mountpoint = Path(scratch) / "disk", Path(scratch) / "mnt"
        mountpoint.mkdir()
        for n in range(GREP_FILES):
            body = f"# module {n}\n" + "".join(f"line_{i} = {i * n}\n" for i in range(40))
            if n % 100 == 0:
                body += "NEEDLE = True\n"
            target = disk / f"pkg{n % 20}" / f"mod{n}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            parts.history.record("grep", f"pkg{n % 20}/mod{n}.py", Content(body.encode()), agent="bench", source="b")
        env = {**os.environ, "LIGHTHOUSE_AGENT_ID": "bench-reader", "LIGHTHOUSE_AGENT_SECRET": secret}
        mount = subprocess.Popen(
            [LIGHTHOUSE, "--state-file", str(state_file), "mount", str(mountpoint), "--project", "grep",
             "--api-url", cloud.api_url],
            env=env, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (mountpoint / "current").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            on_disk = _grep(disk)
            through_mount = _grep(mountpoint / "current")
        finally:
            mount.send_signal(2)
            mount.wait(30)
    return {
        "files": GREP_FILES,
        "disk_s": round(on_disk[0], 3),
        "mount_s": round(through_mount[0], 3),
        "matches": [on_disk[1], through_mount[1]],
        "ratio_mount_to_disk": round(through_mount[0] / max(on_disk[0], 1e-6), 1),
    }


def _grep(root: Path) -> tuple[float, int]:
    began = time.perf_counter()
    completed = subprocess.run(["grep", "-r", "-l", "NEEDLE", str(root)], capture_output=True, text=True, check=False)
    return time.perf_counter() - began, len(completed.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="reconstruction,current,grep")
    wanted = set(parser.parse_args().parts.split(","))
    os.environ["LIGHTHOUSE_REQUESTS_PER_MINUTE"] = "100000000"
    os.environ["LIGHTHOUSE_REQUEST_BURST"] = "100000"
    previous = RESULTS / "history.json"
    figures: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() and wanted != ALL else {}
    figures["quick"] = QUICK
    with (
        tempfile.TemporaryDirectory() as scratch,
        LocalCloud(LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False, mqtt=False)) as cloud,
    ):
        parts = cloud.components()
        figures["floor_conditional_put_http"] = floor(
            cloud.aws_endpoint_url, REGION, cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        )
        reader = parts.agents.register("bench-reader", "agent", projects=["bench", "grep"])
        session = requests.post(
            f"{cloud.api_url}/sessions", json=signed_session_body("bench-reader", reader.secret), timeout=10
        )
        if "reconstruction" in wanted:
            figures["reconstruction"] = reconstruction(parts)
            write("history", figures)
        if "current" in wanted:
            figures["current_view_2000_lines"] = current_view(cloud, parts, session.json()["token"])
            print(f"current view: {json.dumps(figures['current_view_2000_lines'])}", flush=True)
            write("history", figures)
        if "grep" in wanted:
            state_file = Path(scratch) / "local.json"
            state_file.write_text(json.dumps({"api_url": cloud.api_url}))
            figures["grep_1000_files"] = grep_through_mount(cloud, parts, reader.secret, state_file)
            print(f"grep -r: {json.dumps(figures['grep_1000_files'])}", flush=True)
    path = write("history", figures)
    print(f"wrote {path}")


ALL = {"reconstruction", "current", "grep"}


if __name__ == "__main__":
    main()
