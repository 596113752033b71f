"""Contracts between modules, read from the source: imports only, no running code."""

from __future__ import annotations

import ast
from pathlib import Path

import streaming
import streaming.driver

PACKAGE = Path(streaming.__file__).parent


def imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from streaming... import name`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streaming"):
            found += [(node.module or "", alias.name) for alias in node.names]
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_private_name_crosses_a_module_boundary() -> None:
    crossings = [(module_of(path), module, name)
                 for path in PACKAGE.rglob("*.py") for module, name in imports(path)
                 if name.startswith("_") and module != module_of(path)]
    assert crossings == []


def test_the_driver_exports_only_what_other_layers_use() -> None:
    used = {name for path in PACKAGE.rglob("*.py")
            if "driver" not in path.relative_to(PACKAGE).parts
            for module, name in imports(path) if module == "streaming.driver"}
    assert set(streaming.driver.__all__) == used


# -- the layer table of ARCHITECTURE.md, as data ------------------------------

#: Each unit of the package and its layer (0: the shared vocabulary).
LAYER = {
    "streaming.exceptions": 0, "streaming.outcome": 0, "streaming._types": 0,
    "streaming._checks": 0,
    "streaming.encoders": 1, "streaming.formats": 1,
    "streaming.driver": 2,
    "streaming.responses": 3, "streaming.drain": 3, "streaming.resume": 3,
    "streaming.request_body": 3, "streaming.uploads": 3, "streaming.observe": 3,
    "streaming._compat": 3,
    "streaming.compare": 4,
    "streaming.testing": 5, "streaming.tracing": 5, "streaming.cli": 5,
    "streaming.__main__": 5,
    "streaming.integrations": 6, "streaming.hub": 6, "streaming.limits": 6,
    "streaming.metrics": 6, "streaming.otel": 6, "streaming.logs": 6,
    "streaming.inspector": 6, "streaming.client": 6,
    "streaming": 7,  # the package's front door re-exports
}

#: What each layer may import from the package, beyond its own unit.
MAY_IMPORT = {0: {0}, 1: {0, 1}, 2: {0, 1, 2}, 3: {0, 1, 2, 3}, 4: {0, 1},
              5: {0, 1, 2, 3, 5}, 6: {0, 1, 2, 3}, 7: set(LAYER.values())}

#: The one import across the table, named in ARCHITECTURE.md: the test double
#: speaks the wire format the relay parses (pure functions, no openai import).
ACROSS = {("streaming.testing.openai_server", "streaming.integrations.openai_wire")}

#: Third-party packages and the units (or modules) that may import them at
#: module level. Optional ones are imported inside the function that needs
#: them or only under TYPE_CHECKING, so ``import streaming.<unit>`` works
#: without them; ``streaming.limits.redis`` is a module one imports on purpose.
THIRD_PARTY = {
    "anyio": {unit for unit, layer in LAYER.items() if layer >= 2},
    "starlette": {"streaming._compat", "streaming.compare"},
    "sse_starlette": {"streaming.compare"},
    "prometheus_client": {"streaming.metrics"},
    "opentelemetry": {"streaming.otel"},
    "httpx": {"streaming.client"},
    "python_multipart": {"streaming.uploads"},
    "coredis": {"streaming.limits.redis"},
    "trio": set(), "asyncio": set(), "openai": set(),
}


def unit_of(module: str) -> str:
    """The longest prefix of ``module`` in the layer table."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYER:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} has no layer in the table")


def package_imports(path: Path) -> list[str]:
    """Every ``streaming`` module ``path`` imports, anywhere in it: for
    ``from a import b``, ``a.b`` when that is a module, else ``a``."""
    found = [alias.name for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Import) for alias in node.names
             if alias.name.startswith("streaming")]
    for module, name in imports(path):
        candidate = f"{module}.{name}"
        is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
        found.append(candidate if is_module else module)
    return found


def eager_imports(path: Path) -> set[str]:
    """Top-level packages ``path`` imports when it is imported: module-level
    statements only, TYPE_CHECKING blocks left out."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                found |= {alias.name.split(".")[0] for alias in inner.names}
            elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                found.add(inner.module.split(".")[0])
    return found


def test_every_module_has_a_layer_and_imports_only_below_it() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        importer = module_of(path)
        unit = unit_of(importer)
        for target in package_imports(path):
            target_unit = unit_of(target)
            allowed = LAYER[target_unit] in MAY_IMPORT[LAYER[unit]]
            if target_unit != unit and not allowed and (importer, target) not in ACROSS:
                wrong.append((importer, target))
    assert wrong == []


def test_third_party_packages_are_imported_only_where_the_table_says() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = module_of(path)
        wrong += [(module, name) for name in eager_imports(path) if name in THIRD_PARTY
                  and not {module, unit_of(module)} & THIRD_PARTY[name]]
    assert wrong == []


#: The modules that call an ASGI ``send``/``receive`` (a bare ``send(...)``,
#: ``receive(...)``, or ``self._send``/``self._receive``), each for its reason.
#: The driver is the only one that streams a body or races a disconnect.
ASGI_CALLERS = {
    "streaming.driver.core": "streams every response body, listens for the disconnect",
    "streaming.driver.offers": "begins the driver's offered body send up to its first wait",
    "streaming.responses.whole": "a whole response in two messages (metrics, inspector, "
                                 "the limiter's 429/503, the OpenAI test double)",
    "streaming.responses.headers": "a send that drops connection headers on HTTP/2",
    "streaming.request_body": "reads the request body before the response starts",
    "streaming.limits.limiter": "hears a disconnect while a request waits for a slot",
    "streaming.limits.rate": "paces send (a wrapper, installed only with a cap)",
    "streaming.observe": "records the message flow when an observer asks (wrappers)",
    "streaming.tracing.middleware": "records the message flow (wrappers)",
    "streaming.testing.openai_server": "the lifespan protocol of the test double",
}


def calls_asgi(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("send", "receive"):
            return True
        if (isinstance(func, ast.Attribute) and func.attr in ("_send", "_receive")
                and isinstance(func.value, ast.Name) and func.value.id == "self"):
            return True
    return False


def test_send_and_receive_are_called_only_where_architecture_says() -> None:
    callers = {module_of(path) for path in PACKAGE.rglob("*.py") if calls_asgi(path)}
    assert callers == set(ASGI_CALLERS)
