"""Render a run's results (the JSON ``benchmarks.run`` writes) as markdown and a chart.

``python -m benchmarks.report RESULTS.json`` re-renders a saved run. The chart
needs matplotlib (the ``bench`` extra); without it only the markdown is written.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

Results = dict[str, Any]

#: A ratio is flagged as noisy when its repetitions spread by more than this.
NOISY_SPREAD = 0.25
LOG_TICKS = (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)


def format_value(value: float) -> str:
    if math.isinf(value):
        return "inf"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def cell(entry: dict[str, Any], is_baseline: bool, notes: list[str]) -> str:
    if "median" not in entry:
        status = str(entry.get("status", "not measured"))
        if status in ("n/a", "FAILED", "not measured"):
            return f"**{status}**" if status == "FAILED" else status
        if status not in notes:
            notes.append(status)
        word = status.split(":", 1)[0]
        return f"{word} [{notes.index(status) + 1}]"
    text = format_value(entry["median"])
    ratio = entry.get("ratio")
    if is_baseline or ratio is None:
        return text
    return f"{text} ({ratio:.2f}{'~' if noisy(entry) else ''})"


def noisy(entry: dict[str, Any]) -> bool:
    ratios = entry.get("ratios") or []
    return len(ratios) > 1 and (max(ratios) - min(ratios)) > NOISY_SPREAD * entry["ratio"]


def render_markdown(results: Results, chart_name: str | None = None) -> str:
    impls = results["implementations"]
    baseline = results["baseline"]
    sizes = results["sizes"]
    env = results["environment"]
    versions = env["versions"]
    notes: list[str] = []
    load = env.get("loadavg_at_start", [None])[0]
    lines = [
        f"## Streaming benchmarks ({results['mode']} run)",
        "",
        f"{env['date']}, commit {_commits(env)}: uvicorn {versions['uvicorn']} "
        f"(httptools, uvloop, one worker) on 127.0.0.1, Python {env['python']}, "
        f"{env['cpus']} CPUs (load average {load:.2f} before the run), raw-socket client "
        f"in its own process. Medians of {sizes['reps']} interleaved repetitions "
        f"(memory: {sizes['hold_reps']}, keep-alives: 1, each on a fresh server). In "
        "brackets: the median of the per-repetition ratios to the hand-written ASGI "
        "loop measured moments apart in the same run; `~` marks a ratio whose "
        f"repetitions spread by more than {NOISY_SPREAD:.0%}. "
        "↑ higher is better, ↓ lower is better.",
        "",
        "| figure | unit | " + " | ".join(impl["label"] for impl in impls) + " |",
        "|---|---|" + "---|" * len(impls),
    ]
    for figure in results["figures"]:
        arrow = "↑" if figure["higher_is_better"] else "↓"
        cells = [
            cell(figure["values"].get(impl["name"], {}), impl["name"] == baseline, notes)
            for impl in impls
        ]
        head = f"| {figure['label']} {arrow} | {figure['unit']} | "
        lines.append(head + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    if notes:
        lines.append("")
    for failure in results["failures"]:
        lines.append(f"**FAILED** {failure['impl']} / {failure['step']}: {failure['error']}")
        lines.append("")
    if chart_name:
        lines += [f"![ratios against the hand-written ASGI loop]({chart_name})", ""]
    return "\n".join(lines)


def _commits(env: dict[str, Any]) -> str:
    start, end = env.get("commit_at_start", env["commit"]), env["commit"]
    return str(start) if start == end else f"{start} (HEAD moved to {end} during the run)"


def render_chart(results: Results, path: Path) -> bool:
    """Draw the ratios to the baseline as grouped bars; False without matplotlib."""
    try:
        import matplotlib  # optional: the ``bench`` extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    baseline = results["baseline"]
    impls = [impl for impl in results["implementations"] if impl["name"] != baseline]
    panels = [
        ("throughput against the hand-written loop (higher is better)", True),
        ("costs against the hand-written loop (lower is better)", False),
    ]
    fig, axes = plt.subplots(2, 1, figsize=(16, 10))
    for ax, (title, higher) in zip(axes, panels, strict=True):
        rows = [f for f in results["figures"] if f["higher_is_better"] == higher and f["has_ratio"]]
        width = 0.8 / max(1, len(impls))
        shown = [1.0]
        for i, impl in enumerate(impls):
            xs, ys = [], []
            for x, row in enumerate(rows):
                ratio = row["values"].get(impl["name"], {}).get("ratio")
                if ratio is not None and math.isfinite(ratio) and ratio > 0:
                    xs.append(x + (i - (len(impls) - 1) / 2) * width)
                    ys.append(ratio)
            shown += ys
            bars = ax.bar(xs, ys, width, label=impl["label"])
            ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=6, rotation=90,
                         padding=2)  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylim(min(shown) / 1.5, max(shown) * 1.6)
        ax.yaxis.set_major_locator(FixedLocator(LOG_TICKS))
        ax.yaxis.set_major_formatter(lambda value, _: f"{value:g}")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(rows)), [_tick(row, baseline) for row in rows], fontsize=7)
        ax.set_ylabel("ratio to the hand-written loop")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"streaming responses on uvicorn ({results['mode']} run, "
                 f"{results['environment']['date']})", fontsize=11)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _tick(row: dict[str, Any], baseline: str) -> str:
    label = textwrap.fill(row["label"], 18)
    base = row["values"].get(baseline, {}).get("median")
    if base is None:
        return label
    return f"{label}\n(loop: {format_value(base)} {row['unit']})"


def main(argv: list[str]) -> int:
    """``python -m benchmarks.report RESULTS.json [OUTPUT_STEM]``: write
    ``OUTPUT_STEM.md`` and ``.png`` (by default next to the JSON)."""
    source = Path(argv[1])
    stem = Path(argv[2]) if len(argv) > 2 else source.with_suffix("")
    results = json.loads(source.read_text())
    chart = render_chart(results, stem.with_suffix(".png"))
    markdown = render_markdown(results, stem.with_suffix(".png").name if chart else None)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
