"""The Lambda layer as Lambda sees it: built from `layers/lighthouse/requirements.txt` into a clean
directory the way its Makefile builds it for `sam build` (`pip install --no-deps` of the whole pinned
closure, then `slim_layer.py`), and every function's handler imported with nothing else importable.

On Lambda a function sees the Python standard library, its own directory (`/var/task`) and its
layers (`/opt/python`): nothing from this project's virtual environment. A dependency missing from
`requirements.txt` therefore works here and breaks every call there. `check_functions` imports each
handler in a child interpreter started with `-I -S` (no site-packages, no PYTHONPATH) whose path is
only the function's directory, the built layer and the `lighthouse` package, then imports every
module named by any `import` statement in those sources (lazy ones inside functions included), and
loads botocore's model of every service named by a `client("...")` call (the slimmed layer keeps
only those).

Builds are cached by the hash of the requirements files and the slimming script (and the
interpreter), so only the first start after a change pays for `pip install`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighthouse_tools.template import PROJECT_ROOT

LAYER_SOURCE = PROJECT_ROOT / "layers" / "lighthouse"
FUNCTIONS_DIR = PROJECT_ROOT / "functions"
CACHE_ROOT = PROJECT_ROOT / ".lighthouse" / "cache"


class LayerError(RuntimeError):
    """The layer cannot be built, or a handler cannot import from it."""


@dataclass(frozen=True)
class BuiltLayer:
    dependencies: Path  # what `pip install -r requirements.txt --target` produced
    package_root: Path  # the directory holding the `lighthouse` package

    @property
    def paths(self) -> list[Path]:
        return [self.dependencies, self.package_root]


def _digest(*files: Path) -> str:
    digest = hashlib.sha256(f"{sys.version_info[:3]}|{sys.platform}".encode())
    for file in files:
        if "__pycache__" in file.parts:
            continue
        digest.update(str(file).encode())
        digest.update(file.read_bytes() if file.exists() else b"")
    return digest.hexdigest()[:20]


SLIM_LAYER = LAYER_SOURCE / "slim_layer.py"


def install_requirements(requirements: Path, cache_root: Path = CACHE_ROOT, slim: bool = False) -> Path:
    """`pip install --no-deps --target` of one requirements file (which pins its whole closure, as
    the layer's Makefile expects), then `slim_layer.py` if `slim`; cached by the hash of both."""
    target = cache_root / f"deps-{_digest(requirements, *([SLIM_LAYER] if slim else []))}"
    if (target / ".complete").exists():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--no-deps", "--target", str(staging), "-r", str(requirements),
    ]  # fmt: skip
    steps = [command, *([[sys.executable, str(SLIM_LAYER), str(staging)]] if slim else [])]
    for step in steps:
        completed = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise LayerError(f"could not build {requirements} ({step[1]}): {completed.stderr.strip()[-2000:]}")
    (staging / ".complete").write_text(requirements.read_text())
    try:
        staging.rename(target)
    except OSError:  # another process built the same layer meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_layer(cache_root: Path = CACHE_ROOT) -> BuiltLayer:
    return BuiltLayer(install_requirements(LAYER_SOURCE / "requirements.txt", cache_root, slim=True), LAYER_SOURCE)


# Layer modules whose imports only some functions provide, through their own requirements.txt:
# module (under lighthouse/) -> the function directories that use it.
FUNCTION_REQUIREMENT_MODULES: dict[str, tuple[str, ...]] = {
    "mcp_tools.py": ("mcp_http",),  # the MCP SDK
    "history/annotate.py": ("api",),  # tree-sitter and its grammars
}


def imported_modules(*roots: Path) -> set[str]:
    """Top-level names of every absolute import in the Python files under `roots`."""
    names: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - {"__future__"}


def called_services(*roots: Path) -> set[str]:
    """Every AWS service named by a `client("<service>")` call in the Python files under `roots`."""
    services: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("client", "client_at") and isinstance(node.args[0].value, str):
                    services.add(node.args[0].value)
    return services


_PROBE = """
import importlib, importlib.util, json, sys, traceback
request = json.loads(sys.argv[1])
sys.path[:0] = request["layer"]
problems = {}
for name, function in request["functions"].items():
    found = problems.setdefault(name, [])
    sys.path[:0] = function["paths"]
    try:
        spec = importlib.util.spec_from_file_location("_probe_" + name, function["handler_file"])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as Lambda's import of the handler module leaves it
        spec.loader.exec_module(module)
    except BaseException as error:
        found.append("handler: " + "".join(traceback.format_exception_only(type(error), error)).strip())
    for module_name in function["modules"]:
        try:
            importlib.import_module(module_name)
        except BaseException as error:
            found.append(f"import {module_name}: {type(error).__name__}: {error}")
    del sys.path[: len(function["paths"])]
import botocore.session
session = botocore.session.get_session()
for service in request["services"]:
    try:
        session.get_service_model(service)
    except BaseException as error:
        problems.setdefault("*", []).append(f"botocore model of {service}: {type(error).__name__}: {error}")
print(json.dumps({name: found for name, found in problems.items() if found}))
"""


def _own_modules(own_only: dict[Path, tuple[str, ...]], code_dir: Path) -> set[str]:
    """What the layer modules that only this function's requirements provide import."""
    return imported_modules(*(path for path, users in own_only.items() if code_dir.name in users))


def check_functions(functions: dict[str, tuple[Path, str]], layer: BuiltLayer) -> dict[str, list[str]]:
    """{function: problems} importing each handler given as {name: (code dir, handler module)}, and
    everything its sources and the layer's sources import, from the layer alone (one child process).

    A function's own `requirements.txt`, if it has one, is built and put on that function's path.
    """
    package = layer.package_root / "lighthouse"
    # Layer modules whose imports only functions with their own requirements.txt provide (the MCP
    # SDK of the MCP function): checked for those functions, not for every one.
    own_only = {package / name: users for name, users in FUNCTION_REQUIREMENT_MODULES.items()}
    package_modules = imported_modules(*(p for p in package.rglob("*.py") if p not in own_only))
    described: dict[str, dict[str, Any]] = {}
    services = called_services(layer.package_root / "lighthouse", *(code_dir for code_dir, _ in functions.values()))
    request = {"layer": [str(p) for p in layer.paths], "functions": described, "services": sorted(services)}
    for name, (code_dir, module) in functions.items():
        own = code_dir / "requirements.txt"
        paths = [str(code_dir)] + ([str(install_requirements(own))] if own.exists() else [])
        extra = _own_modules(own_only, code_dir) if own.exists() else set()
        modules = sorted((imported_modules(code_dir) | package_modules | extra) - {"lighthouse"})
        described[name] = {
            "paths": paths,
            "handler_file": str(code_dir / f"{module.replace('.', '/')}.py"),
            "modules": modules,
        }
    completed = subprocess.run(  # noqa: S603 - our interpreter, isolated from site-packages on purpose
        [sys.executable, "-I", "-S", "-c", _PROBE, json.dumps(request)],
        capture_output=True,
        text=True,
        cwd=layer.package_root,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        return {"*": [f"the import probe failed: {completed.stderr.strip()[-2000:]}"]}
    problems: dict[str, list[str]] = json.loads(completed.stdout)
    return problems


def verified_layer(functions: dict[str, tuple[Path, str]], cache_root: Path = CACHE_ROOT) -> BuiltLayer:
    """The built layer, once every handler imported from it; cached by the hash of the layer's
    requirements and of every source file, so an unchanged tree starts without a probe."""
    layer = build_layer(cache_root)
    sources = sorted(
        [
            *LAYER_SOURCE.rglob("*.py"),
            *(p for code_dir, _ in functions.values() for p in code_dir.rglob("*") if p.is_file()),
        ]
    )
    stamp = cache_root / f"verified-{_digest(LAYER_SOURCE / 'requirements.txt', SLIM_LAYER, *sources)}"
    if stamp.exists():
        return layer
    problems = check_functions(functions, layer)
    if problems:
        lines = [f"  {name}: {problem}" for name, found in problems.items() for problem in found]
        raise LayerError("a function cannot import from the Lambda layer as built:\n" + "\n".join(lines))
    stamp.write_text("ok")
    return layer
