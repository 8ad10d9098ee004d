"""Command-line tools the project drives but does not import, each in a virtual environment of its own.

MiniStack and the SAM CLI each pin a botocore that differs from the project's (and from each other's),
so neither can share the project's environment. Each is installed, on first use, into
`.lighthouse/tools/<name>` from a lock file under `localstack/tools/` that pins every package
(`pip freeze` of a working environment), and reinstalled when that lock file changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lighthouse_tools.template import PROJECT_ROOT

TOOLS_ROOT = PROJECT_ROOT / ".lighthouse" / "tools"
LOCKS = PROJECT_ROOT / "localstack" / "tools"


class ToolError(RuntimeError):
    """A tool could not be installed."""


@dataclass(frozen=True)
class Tool:
    name: str
    lock: Path

    @property
    def directory(self) -> Path:
        return TOOLS_ROOT / self.name

    @property
    def bin(self) -> Path:
        return self.directory / "bin"

    def executable(self) -> Path:
        """The tool's executable, installing its environment from the lock file if it is missing or stale."""
        stamp = self.directory / f".installed-{hashlib.sha256(self.lock.read_bytes()).hexdigest()[:16]}"
        if not stamp.exists():
            self._install()
            stamp.write_text(self.lock.read_text())
        return self.bin / self.name

    def _install(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(self.directory)],
            # The lock is a whole, consistent set: no resolution needed, and none may be done.
            [str(self.bin / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "-r", str(self.lock)],
        ]  # fmt: skip
        for step in steps:
            completed = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
            if completed.returncode != 0:
                shutil.rmtree(self.directory, ignore_errors=True)
                raise ToolError(f"could not install {self.name} from {self.lock}: {completed.stderr.strip()[-2000:]}")


MINISTACK = Tool("ministack", LOCKS / "ministack.txt")
SAM = Tool("sam", LOCKS / "sam.txt")
