"""Layering rules, checked on the source with `ast`:

* domain/ is pure: no Slack, database, scheduler or HTTP library, and none of the outer packages;
* modals/ only builds Slack payloads: no database, storage, HTTP server or wiring;
* the wall clock is read in domain/clock.py only; everything else is handed a Clock;
* Slack listeners stay thin (at most 40 lines each) and delegate to the service;
* mrkdwn (`Mrkdwn`) is made only from literals, escaped user text being the only other input.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ("bot", "handlers", "modals", "storage", "scheduler", "domain")

DOMAIN_FORBIDDEN = frozenset(
    {
        "slack_bolt",
        "slack_sdk",
        "sqlmodel",
        "sqlalchemy",
        "apscheduler",
        "aiohttp",
        "asyncpg",
        "aiosqlite",
        "bot",
        "handlers",
        "storage",
        "scheduler",
        "modals",
    }
)
MODALS_FORBIDDEN = frozenset({"sqlmodel", "sqlalchemy", "storage", "aiohttp", "bot", "handlers"})

CLOCK_CALLS = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
    }
)
CLOCK_HOME = "domain/clock.py"
# Known reads of the wall clock outside domain/clock.py, as (file, call). Each one is a
# debt: the test fails once an entry no longer occurs, so this list can only shrink.
KNOWN_CLOCK_READS: frozenset[tuple[str, str]] = frozenset({})

MAX_LISTENER_LINES = 40


def py_files(*packages: str) -> list[Path]:
    files = sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))
    return files


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --------------------------------------------------------------------------- checkers


def imported_top_levels(source: str, *, package: str = "") -> Iterator[tuple[int, str]]:
    """(line, top-level module name) for every import in `source`, static or importlib-style.

    `package` is the dotted package of the file, for resolving relative imports.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                yield node.lineno, node.module.split(".")[0]
                continue
            parts = package.split(".") if package else []
            base = parts[: len(parts) - (node.level - 1)] if node.level - 1 <= len(parts) else []
            if base:
                yield node.lineno, base[0]
            elif node.module:
                yield node.lineno, node.module.split(".")[0]
            else:
                for alias in node.names:
                    yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value.lstrip(".").split(".")[0]


def import_violations(source: str, forbidden: frozenset[str], *, package: str = "") -> list[str]:
    return [
        f"line {line}: imports {name}"
        for line, name in imported_top_levels(source, package=package)
        if name in forbidden
    ]


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> qualified name, from the file's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, qualified call) for every direct read of the wall clock."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        qualified = aliases.get(head, head) + (f".{rest}" if rest else "")
        # `datetime.now(` with `datetime` not imported in a way we resolved still counts
        if qualified in CLOCK_CALLS or dotted in {"datetime.now", "datetime.utcnow", "time.time"}:
            found.append((node.lineno, qualified if qualified in CLOCK_CALLS else dotted))
    return found


LISTENER_DECORATORS = frozenset(
    {
        "action",
        "view",
        "command",
        "event",
        "shortcut",
        "options",
        "message",
        "view_submission",
        "view_closed",
        "block_action",
        "use",
    }
)


def listeners(source: str) -> Iterator[tuple[str, int]]:
    """(name, length in lines) for each decorated function defined inside `register`."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "register"):
            continue
        for inner in ast.walk(node):
            if inner is node or not isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not inner.decorator_list:
                continue
            assert inner.end_lineno is not None
            yield inner.name, inner.end_lineno - inner.lineno + 1


def is_listener_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr in LISTENER_DECORATORS


# --------------------------------------------------------------------------- self-checks


def test_import_checker_detects_violations() -> None:
    source = (
        "import os\n"
        "import sqlalchemy.orm\n"
        "from slack_sdk.models.blocks import SectionBlock\n"
        "from domain.enums import Status\n"
        "from ..storage import repository\n"
        "import importlib\n"
        "mod = importlib.import_module('aiohttp.web')\n"
        "def f():\n"
        "    import bot.app as app\n"
    )
    assert import_violations(source, DOMAIN_FORBIDDEN, package="domain") == [
        "line 2: imports sqlalchemy",
        "line 3: imports slack_sdk",
        "line 5: imports storage",
        "line 7: imports aiohttp",
        "line 9: imports bot",
    ]
    assert (
        import_violations(
            "from domain import quorum\nfrom . import enums\n", DOMAIN_FORBIDDEN, package="domain"
        )
        == []
    )
    assert import_violations("from slack_sdk.models.views import View\n", MODALS_FORBIDDEN) == []
    assert import_violations("from storage.models import ChangeRow\n", MODALS_FORBIDDEN) == [
        "line 1: imports storage"
    ]


def test_clock_checker_detects_violations() -> None:
    source = (
        "import time\n"
        "import datetime as dt\n"
        "from datetime import datetime, UTC\n"
        "from time import time as wall\n"
        "a = datetime.now(UTC)\n"
        "b = dt.datetime.utcnow()\n"
        "c = time.time()\n"
        "d = wall()\n"
        "e = time.monotonic()\n"
        "f = clock.now()\n"
        "g = datetime.fromtimestamp(0, UTC)\n"
    )
    assert clock_reads(source) == [
        (5, "datetime.datetime.now"),
        (6, "datetime.datetime.utcnow"),
        (7, "time.time"),
        (8, "time.time"),
    ]


def test_listener_length_checker() -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(45))
    source = (
        "def register(app, ctx):\n"
        "    @app.action('a')\n"
        "    async def short(ack):\n"
        "        await ack()\n"
        "\n"
        "    @app.view('b')\n"
        "    async def long(ack):\n"
        f"{body}\n"
        "\n"
        "def helper():\n"
        "    pass\n"
    )
    assert dict(listeners(source)) == {"short": 2, "long": 46}


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("path", py_files("domain"), ids=rel)
def test_domain_is_pure(path: Path) -> None:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    assert import_violations(path.read_text(), DOMAIN_FORBIDDEN, package=package) == []


@pytest.mark.parametrize("path", py_files("modals"), ids=rel)
def test_modals_are_pure(path: Path) -> None:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    assert import_violations(path.read_text(), MODALS_FORBIDDEN, package=package) == []


def test_packages_exist() -> None:
    # guard against the rules passing vacuously after a move
    assert len(py_files("domain")) >= 5
    assert len(py_files("modals")) >= 2
    assert len(py_files("handlers")) >= 2
    assert (ROOT / CLOCK_HOME).is_file()


def test_wall_clock_is_read_only_in_domain_clock() -> None:
    found: set[tuple[str, str]] = set()
    where: list[str] = []
    for path in py_files(*APP_PACKAGES):
        name = rel(path)
        if name == CLOCK_HOME:
            continue
        for line, call in clock_reads(path.read_text()):
            found.add((name, call))
            if (name, call) not in KNOWN_CLOCK_READS:
                where.append(f"{name}:{line}: {call}()")
    assert where == [], "read the time from the injected Clock instead:\n" + "\n".join(where)
    stale = KNOWN_CLOCK_READS - found
    assert not stale, f"fixed, so remove from KNOWN_CLOCK_READS: {sorted(stale)}"


def test_clock_home_does_read_the_clock() -> None:
    assert clock_reads((ROOT / CLOCK_HOME).read_text()), "the checker no longer sees SystemClock's read"


def test_slack_listeners_are_short() -> None:
    seen = []
    too_long = []
    for path in py_files("handlers"):
        for name, length in listeners(path.read_text()):
            seen.append(name)
            if length > MAX_LISTENER_LINES:
                too_long.append(f"{rel(path)}: {name} is {length} lines (max {MAX_LISTENER_LINES})")
    assert seen, "no listeners found inside register(); has the handler layout changed?"
    assert too_long == [], "\n".join(too_long)


def test_listener_decorators_are_slack_ones() -> None:
    """What `listeners` counts are really app.action/view/command/event registrations."""
    for path in py_files("handlers"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "register":
                for inner in ast.walk(node):
                    if inner is not node and isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                        for decorator in inner.decorator_list:
                            assert is_listener_decorator(decorator), f"{rel(path)}: {inner.name}"


# --------------------------------------------------------------------------- mrkdwn
MRKDWN_HOME = "modals/text.py"
# The template (or separator) argument of these must be a string literal: a template is
# markup, so user text there would be sent unescaped.
LITERAL_FIRST = frozenset({"Mrkdwn", "md", "join_md"})


# Block Kit's mrkdwn text objects take any str; modals/text.py wraps them to take Mrkdwn.
RAW_MRKDWN_BUILDERS = frozenset({"SectionBlock", "MarkdownTextObject", "ContextBlock"})


# What makes Mrkdwn: inside an f-string its result turns back into an untyped str, which
# the next md() escapes a second time (or a builder sends as it is).
MRKDWN_MAKERS = frozenset(
    {"mention", "slack_date", "escape", "escaped_clip", "md", "join_md", "clip_md", "incident_link"}
)


def _call_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def mrkdwn_forgeries(source: str) -> list[str]:
    """Mrkdwn made from a non-literal or inside an f-string; Block Kit mrkdwn built
    around the typed wrappers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            made = {_call_name(inner) for inner in ast.walk(node)} & MRKDWN_MAKERS
            found += [f"line {node.lineno}: {name}() inside an f-string" for name in sorted(made)]
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant)
            and k.value == "type"
            and isinstance(v, ast.Constant)
            and v.value == "mrkdwn"
            for k, v in zip(node.keys, node.values, strict=True)
        ):
            found.append(f"line {node.lineno}: a raw mrkdwn text object")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in RAW_MRKDWN_BUILDERS:
            found.append(f"line {node.lineno}: {name}() outside {MRKDWN_HOME}")
        if name not in LITERAL_FIRST:
            continue
        first = node.args[0] if node.args else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            found.append(f"line {node.lineno}: {name}() of a non-literal")
    return found


def test_mrkdwn_checker_detects_forgeries() -> None:
    assert mrkdwn_forgeries('Mrkdwn("Help")\nmd("*{}*", title)\njoin_md(", ", xs)\nsection(md("x"))') == []
    assert len(mrkdwn_forgeries('Mrkdwn(f"*{title}*")\nmd(title)\ntext.md(x + "!")')) == 3
    raw = 'SectionBlock(text=title)\nblocks.ContextBlock(elements=[])\nx = {"type": "mrkdwn", "text": t}'
    assert len(mrkdwn_forgeries(raw)) == 3
    assert len(mrkdwn_forgeries('f"by {mention(user)}: {escaped_clip(reason, 9)}"\nf"{change.id}"')) == 2


# Helpers that trust their input, and the one place each may be used.
TRUSTING = {"reloaded": "bot/gateway.py", "with_mentions": "handlers/progress.py"}


def test_trusting_mrkdwn_helpers_stay_where_they_are_safe() -> None:
    """`reloaded` revives text the gateway gated when it was queued; `with_mentions` keeps
    the mentions of a domain refusal. Neither may meet user text, so each stays in its file."""
    bad = [
        f"{rel(path)}: {name}()"
        for path in py_files(*APP_PACKAGES)
        if rel(path) != MRKDWN_HOME
        for name in {_call_name(node) for node in ast.walk(ast.parse(path.read_text()))} & set(TRUSTING)
        if TRUSTING[name] != rel(path)
    ]
    assert bad == []


def test_mrkdwn_is_made_from_literals_only() -> None:
    """Outside modals/text.py, mrkdwn comes from literals and the escaping helpers only."""
    bad = [
        f"{rel(path)} {problem}"
        for path in py_files(*APP_PACKAGES)
        if rel(path) != MRKDWN_HOME
        for problem in mrkdwn_forgeries(path.read_text())
    ]
    assert bad == [], "\n".join(bad)


# --------------------------------------------------------------------------- module cycles
def module_imports(path: Path) -> set[str]:
    """The project modules a file imports (`from pkg import mod` names the module), lazy imports too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in `graph` (module -> modules it imports), or [] if there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for imported in sorted(graph.get(module, set())):
            if cycle := visit(imported, [*path, module]):
                return cycle
        done.add(module)
        return []

    for module in sorted(graph):
        if cycle := visit(module, []):
            return cycle
    return []


def test_module_cycle_checker() -> None:
    assert module_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert module_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_storage_has_no_module_cycle() -> None:
    files = [p for p in py_files("storage") if "migrations" not in p.parts]
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in files}
    graph = {name: module_imports(path) & set(names) for name, path in names.items()}
    assert module_cycle(graph) == []
