"""Peer drift report: ``python -m benchmarks.peers [--with NAME==VERSION ...] [--keep]``.

The comparison tests (marked ``peer``) assert what Starlette, sse-starlette,
FastAPI, uvicorn and the clients do, and run against the versions pinned in
``tests/constraints.txt``: a peer can change its behaviour in a patch release,
and a claim about a peer is only true of a version. This command shows what
the newest releases would change, as a report rather than a red CI:

1. it runs the ``peer`` tests here, with the pinned versions (this interpreter);
2. meanwhile it installs the newest releases of every pinned peer and client
   (``--with NAME==VERSION`` picks a version instead) into a scratch
   virtualenv under a temporary directory, and runs the same tests there;
3. it prints the versions side by side and each claim (a test's docstring)
   whose result changed, with the first line of its failure.

The exit status is 0 when both runs completed, whatever they found; 2 when the
scratch environment could not be built. The README's claims about peers then
need a look, and the pins a bump, in one change.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "tests" / "constraints.txt"

#: Pinned so that a new lint rule cannot turn the suite red, but their rules are
#: not claims about a peer: they stay at their pins in the scratch environment.
TOOLS = frozenset({"mypy", "ruff"})

#: How long one run of the peer tests may take before it counts as failed.
RUN_TIMEOUT = 900


@dataclass(frozen=True, slots=True)
class Result:
    """One test's result in one run: ``passed``, ``failed``, ``error``,
    ``skipped`` or ``missing`` (not collected), and the first line of why."""

    outcome: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    test: str
    claim: str
    pinned: Result
    newest: Result


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by canonical name."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"not a pin: {line!r}")
            pins[canonical(name.strip())] = version.strip()
    return pins


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])


def scratch_requirements(setup_cfg: str, pins: dict[str, str],
                         overrides: list[str]) -> list[str]:
    """What the scratch environment installs: the library's and the test
    extra's requirements, unpinned (pip takes the newest) except the tools;
    each override replaces the requirement of the same name."""
    config = configparser.ConfigParser()
    config.read_string(setup_cfg)
    lines = (config["options"]["install_requires"] + "\n"
             + config["options.extras_require"]["test"]).splitlines()
    chosen = {requirement_name(r): r.strip() for r in lines if r.strip()}
    for tool in TOOLS & chosen.keys():
        chosen[tool] = f"{tool}=={pins[tool]}" if tool in pins else chosen[tool]
    for name in pins.keys() - TOOLS - chosen.keys():
        chosen[name] = name  # pinned transitive peers: httptools, h11, uvloop
    for override in overrides:
        chosen[requirement_name(override)] = override
    return sorted(chosen.values())


def read_junit(text: str) -> dict[str, Result]:
    """Results by test id (``tests/test_x.py::test_name[param]``) from pytest's
    ``--junitxml`` report."""
    results = {}
    for case in ElementTree.fromstring(text).iter("testcase"):
        test = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (found.get("message") or found.text or "").strip().split("\n")[0]
                break
        results[test] = Result(outcome, message[:300])
    return results


def changed(pinned: dict[str, Result], newest: dict[str, Result]) -> list[Change]:
    """The tests whose outcome differs between the two runs."""
    changes = []
    for test in sorted(pinned.keys() | newest.keys()):
        before = pinned.get(test, Result("missing"))
        after = newest.get(test, Result("missing"))
        if before.outcome != after.outcome:
            changes.append(Change(test, claim(test), before, after))
    return changes


def claim(test: str, root: Path = ROOT) -> str:
    """The claim a test checks: its docstring's first sentence, else its name."""
    path, _, name = test.partition("::")
    function = name.split("[", 1)[0]
    try:
        tree = ast.parse((root / path).read_text())
    except (OSError, SyntaxError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            doc = ast.get_docstring(node)
            if doc:
                return " ".join(doc.split("\n\n")[0].split())
    return function.removeprefix("test_").replace("_", " ")


def format_report(pins: dict[str, str], here: dict[str, str | None],
                  newest: dict[str, str | None], changes: list[Change],
                  counts: tuple[int, int]) -> str:
    lines = ["peer versions (pinned / this environment / scratch: newest unless --with):"]
    for name in sorted(pins.keys() - TOOLS):
        mark = "  <- differs" if newest.get(name) not in (None, pins[name]) else ""
        lines.append(f"  {name:15} {pins[name]:>10} {here.get(name) or '-':>10} "
                     f"{newest.get(name) or '-':>10}{mark}")
    drifted = [n for n in pins.keys() - TOOLS if here.get(n) != pins[n]]
    if drifted:
        lines.append("warning: this environment is not at the pins for "
                     f"{', '.join(sorted(drifted))} (pip install -e '.[test]' -c "
                     "tests/constraints.txt)")
    lines.append(f"peer tests: {counts[0]} with the pins, {counts[1]} with the newest releases")
    if not changes:
        lines.append("no claim changed")
    else:
        lines.append(f"{len(changes)} claim(s) changed:")
    for change in changes:
        lines.append(f"- {change.test}: {change.pinned.outcome} -> {change.newest.outcome}")
        lines.append(f"    claim: {change.claim}")
        why = change.newest.message or change.pinned.message
        if why:
            lines.append(f"    {why}")
    return "\n".join(lines)


def versions(python: Path | str, names: list[str]) -> dict[str, str | None]:
    script = ("import json, sys\nfrom importlib import metadata\nout = {}\n"
              "for n in sys.argv[1:]:\n"
              "    try: out[n] = metadata.version(n)\n"
              "    except metadata.PackageNotFoundError: out[n] = None\n"
              "print(json.dumps(out))")
    done = subprocess.run([str(python), "-c", script, *names], capture_output=True, text=True,
                          check=True, timeout=60)
    found: dict[str, str | None] = json.loads(done.stdout)
    return found


def start_peer_tests(python: Path | str, report: Path) -> subprocess.Popen[bytes]:
    # cwd=ROOT: `python -m pytest` puts the checkout first on sys.path, so the
    # scratch environment tests this tree without installing it.
    command = [str(python), "-m", "pytest", "-m", "peer", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def finish(run: subprocess.Popen[bytes], report: Path) -> dict[str, Result]:
    try:
        run.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()  # our own child, by its handle
        run.wait()
    if not report.exists():
        return {}
    return read_junit(report.read_text())


def build_scratch(where: Path, requirements: list[str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    python = where / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", *requirements],
                          capture_output=True, text=True, timeout=1200)
    if done.returncode:
        raise RuntimeError("pip install failed:\n" + "\n".join(done.stderr.splitlines()[-15:]))
    return python


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n\n")[1].replace("``", "")  # no reST on a terminal
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=summary)
    parser.add_argument("--with", dest="overrides", action="append", default=[],
                        metavar="NAME==VERSION",
                        help="install this version instead of the newest (repeatable)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch directory and print where it is")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pins = read_pins(CONSTRAINTS.read_text())
    peers = sorted(pins.keys() - TOOLS)
    requirements = scratch_requirements((ROOT / "setup.cfg").read_text(), pins, args.overrides)
    scratch = Path(tempfile.mkdtemp(prefix="streaming-peers-"))
    try:
        pinned_run = start_peer_tests(sys.executable, scratch / "pinned.xml")
        print(f"installing the newest peers into {scratch / 'venv'} ...", file=sys.stderr)
        try:
            python = build_scratch(scratch / "venv", requirements)
        except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            finish(pinned_run, scratch / "pinned.xml")
            print(f"could not build the scratch environment: {exc}", file=sys.stderr)
            return 2
        # One run at a time: some peer tests time a shutdown, and two suites
        # on a small machine would make each other late.
        pinned = finish(pinned_run, scratch / "pinned.xml")
        newest = finish(start_peer_tests(python, scratch / "newest.xml"), scratch / "newest.xml")
        print(format_report(pins, versions(sys.executable, peers), versions(python, peers),
                            changed(pinned, newest), (len(pinned), len(newest))))
        return 0
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
