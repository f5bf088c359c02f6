"""Layering rules, checked on the source with `ast`:

* domain/ is pure: no Slack, database, scheduler or HTTP library, and none of the outer packages;
* modals/ only builds Slack payloads: no database, storage, HTTP server or wiring;
* the wall clock is read in domain/clock.py only; everything else is handed a Clock;
* Slack listeners stay thin (at most 40 lines each) and delegate to the service;
* mrkdwn (`Mrkdwn`) is made only from literals, escaped user text being the only other input.
* imports between top-level packages point down (bot/ wires, tooling/ sits on top), and no
  package has an import cycle among its own modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT

APP_PACKAGES = ("bot", "handlers", "modals", "storage", "scheduler", "domain", "adapters", "tooling")
# Every sub-package (a folder with __init__.py below a top-level package) gets its own module
# graph whose modules must not import each other in a circle (e.g. the use cases: a feature
# imports the base and lower features only). Found rather than listed, so a new sub-package
# cannot slip past the cycle rule.
SUB_PACKAGES = tuple(
    ".".join(init.parent.relative_to(ROOT).parts)
    for package in APP_PACKAGES
    for init in sorted((ROOT / package).rglob("__init__.py"))
    if init.parent != ROOT / package and "migrations" not in init.parts
)
# The use cases: storage implements the ports and modals render the read models, never these.
USE_CASE_MODULES = ("domain.service", "domain.usecases")

# Which of our top-level packages each one may import. Imports point down: the listeners
# (handlers/) and the jobs (scheduler/) are given what they need, so bot/ is the only package
# that imports them; tooling/ builds the app, so it sits above bot/.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "modals": frozenset({"domain"}),
    "storage": frozenset({"domain"}),
    "adapters": frozenset({"domain", "storage"}),
    "handlers": frozenset({"domain", "modals"}),
    "scheduler": frozenset({"domain"}),
    "bot": frozenset({"domain", "modals", "storage", "adapters", "handlers", "scheduler"}),
    "tooling": frozenset({"domain", "modals", "storage", "adapters", "handlers", "scheduler", "bot"}),
}
# The one reach upwards: the CLI's `demo` and `slack` commands load tooling/ by name, inside
# the command, so nothing in bot/ loads it at import time.
LAZY_UPWARD: frozenset[tuple[str, str]] = frozenset({("bot/cli.py", "tooling")})

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
        "adapters",
        "tooling",
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


def function_lines(source: str) -> set[int]:
    """Lines inside a function body: an import there runs when called, not when imported."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            lines.update(range(node.body[0].lineno, node.end_lineno + 1))
    return lines


def sibling_imports(source: str, *, module: str, siblings: frozenset[str]) -> set[str]:
    """The modules of `module`'s own package that it imports (anywhere in the file)."""
    package = module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        for name in names:
            head = ".".join(name.split(".")[: module.count(".") + 1])
            if head in siblings and head != module:
                found.add(head)
    return found


def cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges that lie on some cycle of `graph` (both ends in one strongly connected part)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), set()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {node: reach(node) for node in graph}
    return {(a, b) for a, targets in graph.items() for b in targets if a in reachable.get(b, set())}


def module_graph(package: str) -> dict[str, set[str]]:
    """The package's modules and what each imports of its siblings; a sub-package is one
    node, importing what any of its modules imports (its own modules have a graph of their own)."""
    folder = ROOT.joinpath(*package.split("."))
    files = {f"{package}.{path.stem}": [path] for path in sorted(folder.glob("*.py"))}
    files |= {
        f"{package}.{sub.name}": sorted(sub.rglob("*.py"))
        for sub in sorted(folder.iterdir())
        if (sub / "__init__.py").is_file()
    }
    siblings = frozenset(files)
    return {
        name: set().union(
            *(sibling_imports(path.read_text(), module=name, siblings=siblings) for path in paths)
        )
        for name, paths in files.items()
    }


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


def test_sibling_import_and_cycle_checkers() -> None:
    source = (
        "from storage import reports\n"
        "from storage.models import Row\n"
        "from . import outbox\n"
        "from .database import engine\n"
        "import storage.batching\n"
        "from domain.model import Change\n"
        "def f():\n"
        "    from storage.migrate import upgrade\n"
    )
    siblings = frozenset(
        f"storage.{m}" for m in ("reports", "models", "outbox", "database", "batching", "migrate")
    )
    assert sibling_imports(source, module="storage.repository", siblings=siblings) == set(siblings)
    assert function_lines(source) == {8}
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert cycle_edges(graph) == {("a", "b"), ("b", "a")}
    assert cycle_edges({"a": {"b"}, "b": {"c"}, "c": set()}) == set()


def test_module_graph_sees_the_use_case_features() -> None:
    """The use cases are one node of domain/'s graph and a graph of their own."""
    assert "domain.usecases" in module_graph("domain")["domain.service"]
    features = module_graph("domain.usecases")
    assert "domain.usecases.intake" in features
    assert features["domain.usecases.base"] == set(), "the shared base imports no feature"


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


def test_allowed_imports_cover_every_package_and_point_down() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    assert set(ALLOWED_IMPORTS) == packages == set(APP_PACKAGES)
    assert cycle_edges({pkg: set(allowed) for pkg, allowed in ALLOWED_IMPORTS.items()}) == set()


@pytest.mark.parametrize("path", py_files(*APP_PACKAGES), ids=rel)
def test_package_imports_point_down(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    source = path.read_text()
    lazy = function_lines(source)
    wrong = [
        f"line {line}: {package} imports {name}"
        for line, name in imported_top_levels(source, package=package)
        if name in ALLOWED_IMPORTS and name != package and name not in ALLOWED_IMPORTS[package]
        if not ((rel(path), name) in LAZY_UPWARD and line in lazy)
    ]
    assert wrong == [], "imports point down (see ALLOWED_IMPORTS):\n" + "\n".join(wrong)


def test_lazy_upward_reach_is_still_needed() -> None:
    for name, target in LAZY_UPWARD:
        source = (ROOT / name).read_text()
        assert any(found == target for _, found in imported_top_levels(source)), (name, target)


def test_every_sub_package_has_its_module_graph_checked() -> None:
    assert {"domain.usecases", "domain.messages", "tooling.emulator"} <= set(SUB_PACKAGES)


def test_no_import_cycle_among_a_packages_modules() -> None:
    found: set[tuple[str, str]] = set()
    for package in (*APP_PACKAGES, *SUB_PACKAGES):
        found |= cycle_edges(module_graph(package))
    assert not found, "import cycle among a package's modules:\n" + "\n".join(
        f"{a} -> {b}" for a, b in sorted(found)
    )


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
    {
        "mention",
        "slack_date",
        "escape",
        "escaped_clip",
        "md",
        "join_md",
        "clip_md",
        "incident_link",
        "source_link",
    }
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


def test_tests_share_helpers_through_support_not_sys_path() -> None:
    """Shared helpers are imported as tests.support.<module>: no path edits, no importing conftest."""
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        source = path.read_text()
        if "sys.path" in source and path.name != "test_architecture.py":
            wrong.append(f"{rel(path)}: edits sys.path")
        for line, name in imported_top_levels(source):
            if name == "conftest" or (ROOT / "tests" / "support" / f"{name}.py").is_file():
                wrong.append(f"{rel(path)}:{line}: imports {name} by bare name")
    assert wrong == [], "\n".join(wrong)


def test_storage_and_modals_see_ports_and_read_models_not_the_use_cases() -> None:
    """Storage implements domain/ports.py and modals render domain/read_models.py: neither
    depends on the use cases, so a change to a use case never reaches them."""
    wrong = []
    for path in py_files("storage", "modals"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            if any(name == m or name.startswith(f"{m}.") for name in names for m in USE_CASE_MODULES):
                wrong.append(f"{rel(path)}:{node.lineno}")
    assert wrong == [], wrong


def test_form_limits_come_from_the_domain() -> None:
    """A form's max_length or max_value is the domain's limit, imported, never typed again:
    otherwise the form and the use case's check drift apart."""
    wrong = []
    for path in py_files("modals"):
        for node in ast.walk(ast.parse(path.read_text())):
            limit = isinstance(node, ast.keyword) and node.arg in {"max_length", "max_value"}
            if limit and isinstance(node.value, ast.Constant):
                wrong.append(f"{rel(path)}:{node.value.lineno}: {node.arg}={node.value.value!r}")
    assert wrong == [], wrong
