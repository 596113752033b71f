"""The package as users install it: public names, dependencies, no side effects."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import streaming
from tests.servers import ROOT

PACKAGE = ROOT / "streaming"


def test_all_lists_every_public_name_once_and_each_exists() -> None:
    assert len(streaming.__all__) == len(set(streaming.__all__))
    for name in streaming.__all__:
        assert getattr(streaming, name) is not None
    public = {n for n in vars(streaming) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(streaming, n)).__name__ == "module"}
    assert public - modules == set(streaming.__all__)


def test_import_needs_only_anyio() -> None:
    """Block every optional dependency and import the core and its tools."""
    blocker = (
        "import sys\n"
        "OPTIONAL = {'starlette', 'sse_starlette', 'uvicorn', 'httpx', 'fastapi', 'openai',\n"
        "            'coredis', 'prometheus_client', 'opentelemetry'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.partition('.')[0]\n"
        "        if top in OPTIONAL:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import streaming, streaming.testing, streaming.tracing, streaming.encoders\n"
        "import streaming.limits, streaming.observe, streaming.logs, streaming.inspector\n"
        "assert streaming.StreamingResponse.__mro__[1].__module__ == 'streaming._compat'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_import_in_a_bare_virtualenv(tmp_path: Path) -> None:
    """A virtualenv with no packages but anyio and its own requirements (linked
    in from this one): the core, the limiter, the observers that need no extra
    and the inspector import; the optional extras are really absent there."""
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    only = tmp_path / "only-anyio"
    only.mkdir()
    for name in ("anyio", "idna", "typing_extensions", "exceptiongroup"):
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None and spec.origin is not None:
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            (only / source.name).symlink_to(source)
    (only / "streaming").symlink_to(PACKAGE)
    script = (
        "import importlib.util\n"
        "import streaming, streaming.testing, streaming.tracing, streaming.encoders\n"
        "import streaming.limits, streaming.observe, streaming.logs, streaming.inspector\n"
        "absent = [m for m in ('starlette', 'httpx', 'coredis', 'prometheus_client',\n"
        "                      'opentelemetry', 'uvicorn') if importlib.util.find_spec(m)]\n"
        "print('ok' if not absent else absent)\n"
    )
    result = subprocess.run([str(python), "-I", "-c", f"import sys; sys.path.insert(0, "
                             f"{str(only)!r}); exec({script!r})"],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stdout + result.stderr


def _library_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_asyncio_in_the_library() -> None:
    """anyio only, so trio works: no module imports asyncio but the driver's
    ``loop.py``, which asks whether the running loop is asyncio's (offers are
    asyncio's only) and gives the driver that loop's clock, checkpoint,
    deadline and task group (ARCHITECTURE.md, the driver)."""
    for path in _library_sources():
        if path == PACKAGE / "driver" / "loop.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "asyncio" for n in names), path


def test_py_typed_is_shipped() -> None:
    assert (PACKAGE / "py.typed").exists()
    setup = (ROOT / "setup.cfg").read_text()
    assert "py.typed" in setup


def test_the_distribution_has_a_name_of_its_own() -> None:
    """``streaming`` on PyPI is an unrelated project: the distribution is
    ``asgi-streaming``, and what it installs is imported as ``streaming``."""
    assert metadata.metadata("asgi-streaming")["Name"] == "asgi-streaming"
    assert "asgi-streaming" in metadata.packages_distributions()["streaming"]
    assert "\nname = asgi-streaming\n" in (ROOT / "setup.cfg").read_text()
