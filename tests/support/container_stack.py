"""Reading docker/: Compose variable interpolation, the Dockerfile's stages, and what the app imports.

Used by tests/test_container_stack.py to check the container stack without a container engine.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"

# The processes the image runs: the API, the worker, migrations (alembic loads migrations/env.py), the
# management commands and the replay script.
ENTRY_POINTS = ["api/main.py", "worker.py", "migrations/env.py", "runtime/manage.py", "scripts/replay_from_cluster.py"]


class MissingVariable(Exception):
    """A ${VAR:?message} whose variable is unset or empty."""


_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one value: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?m}, ${VAR?m}, ${VAR:+a}, $$."""

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        parsed = _BRACED.match(match["braced"])
        if parsed is None:
            raise ValueError(f"invalid interpolation ${{{match['braced']}}}")
        name, op, arg = parsed["name"], parsed["op"], parsed["arg"] or ""
        value = env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return interpolate(arg, env) if unset_or_empty else value or ""
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return value or ""
        if op in (":+", "+"):
            return "" if unset_or_empty else interpolate(arg, env)
        return value or ""

    return _VARIABLE.sub(one, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    """Every string of a parsed Compose file interpolated (keys too, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {interpolate_tree(key, env): interpolate_tree(value, env) for key, value in node.items()}
    return node


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads an .env file: comments and blank lines skipped, quotes removed."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def referenced_variables(text: str) -> set[str]:
    """The names of the variables a Compose file interpolates."""
    names = set()
    for match in _VARIABLE.finditer(text):
        if match["plain"]:
            names.add(match["plain"])
        elif match["braced"] and (parsed := _BRACED.match(match["braced"])):
            names.add(parsed["name"])
    return names


@dataclass
class Stage:
    """One FROM ... stage of a Dockerfile: its base, name and instructions (keyword, arguments)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def copied_sources(stage: Stage) -> set[str]:
    """The repository paths a stage's COPY instructions take from the build context (not --from=)."""
    sources: set[str] = set()
    for args in stage.arguments("COPY"):
        words = args.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.update(p.rstrip("/").removeprefix("./") for p in paths[:-1])
    return sources


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def app_files() -> set[Path]:
    """Every repository module reachable by imports from the entry points (the whole package of each)."""
    seen: set[Path] = set()
    queue = [ROOT / entry for entry in ENTRY_POINTS]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports_of(path):
            parts = module.split(".")
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
            for depth in range(1, len(parts) + 1):
                target = _module_file(".".join(parts[:depth]))
                if target is not None and target not in seen:
                    queue.append(target)
    return seen


def required_top_level() -> set[str]:
    """The repository's top-level files and folders the running app needs.

    The first path part of every module reached from the entry points, plus each top-level entry that
    reached code names in a string (data folders such as templates/ and policy/, alembic.ini).
    """
    files = app_files()
    needed = {path.relative_to(ROOT).parts[0] for path in files}
    top_level = {entry.name for entry in ROOT.iterdir() if not entry.name.startswith(".")}
    named = set().union(*(_string_constants(path) for path in files)) & top_level
    # Folders the tests, docs and tooling use are named in strings too, but are not read by the app.
    return (needed | named) - {"tests", "docs", "data", "docker", "Makefile"}
