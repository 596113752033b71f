"""Render a cost-curve run (the JSON ``benchmarks.curve`` writes) as markdown and a chart.

``python -m benchmarks.curve_report RESULTS.json`` re-renders a saved run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import format_value

Results = dict[str, Any]
BASELINE = "raw"

IDLE_ROWS = (
    ("idle_kib", "server memory per idle SSE connection", "KiB"),
    ("idle_cpu", "server CPU while they idle (keep-alives included)", "% of a core"),
    ("idle_median", "keep-alive lateness, median", "ms"),
    ("idle_p99", "keep-alive lateness, p99", "ms"),
    ("idle_late", "keep-alives later than the target", "%"),
    ("idle_open_s", "time to open them all (client-bound)", "s"),
)


def _value(results: Results, impl: str, key: str) -> float | None:
    value = results["medians"].get(impl, {}).get(key)
    return None if value is None else float(value)


def _cell(results: Results, impl: str, key: str, ratio: bool = True) -> str:
    value = _value(results, impl, key)
    if value is None:
        status = results["status"].get(impl, {}).get(key) or results["status"].get(
            impl, {}).get("idle_kib")
        return status or "n/a"
    base = _value(results, BASELINE, key)
    text = format_value(value)
    samples = results["samples"].get(impl, {}).get(key, [])
    spread = len(samples) > 1 and (max(samples) - min(samples)) > 0.25 * abs(value)
    if ratio and impl != BASELINE and base:
        text += f" ({value / base:.2f}{'~' if spread else ''})"
    return text


def render_markdown(results: Results, chart_name: str | None) -> str:
    impls = [impl["name"] for impl in results["implementations"]]
    labels = [impl["label"] for impl in results["implementations"]]
    env, sizes = results["environment"], results["sizes"]
    load = env.get("loadavg_at_start", [0.0])[0]
    head = "| | " + " | ".join(labels) + " |"
    rule = "|---|" + "---|" * len(impls)
    lines = [
        f"## The cost curve ({results['mode']} run)",
        "",
        f"{env['date']}, commit {env.get('commit_at_start', env['commit'])}: uvicorn "
        f"{env['versions']['uvicorn']} (httptools, uvloop, one worker; aiohttp on its own "
        f"server) on 127.0.0.1, {env['cpus']} CPUs (load average {load:.2f} before the run). "
        f"Medians of {sizes['reps']} interleaved repetitions; in brackets the ratio to the "
        "hand-written ASGI loop; `~` where the repetitions spread by more than 25%.",
        "",
    ]
    if _measured(results, "chunks_"):
        lines += render_concurrency(results, impls, head, rule)
    if _measured(results, "idle_kib"):
        lines += render_idle(results, impls, head, rule)
    lines += render_fanout(results)
    for failure in results["failures"]:
        lines += [f"**FAILED** {failure['impl']} / {failure['step']}: {failure['error']}", ""]
    if chart_name:
        lines += [f"![the cost curve]({chart_name})", ""]
    return "\n".join(lines)


def _measured(results: Results, prefix: str) -> bool:
    return any(key.startswith(prefix) for by_key in results["medians"].values()
               for key in by_key)  # fmt: skip


def render_concurrency(results: Results, impls: list[str], head: str, rule: str) -> list[str]:
    sizes = results["sizes"]
    lines = ["### Aggregate 16 B chunks/s by concurrent streams (higher is better)", "",
             head, rule]  # fmt: skip
    per_conn = results["per_conn"]
    for conns in sizes["conns"]:
        cells = [_cell(results, impl, f"chunks_{conns}") for impl in impls]
        lines.append(f"| {conns:,} streams x {per_conn[str(conns)]:,} chunks | "
                     + " | ".join(cells) + " |")  # fmt: skip
    lines += ["", "### Server CPU per chunk, µs (lower is better)", "", head, rule]
    for conns in sizes["conns"]:
        cells = [_cell(results, impl, f"cpu_{conns}") for impl in impls]
        lines.append(f"| {conns:,} streams | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_idle(results: Results, impls: list[str], head: str, rule: str) -> list[str]:
    sizes = results["sizes"]
    held = results.get("idle_held") or sizes["idle_count"]
    lines = [
        f"### {held:,} idle SSE streams in one server process",
        "",
        f"Opened from {sizes['idle_sources']} source addresses, each stream having received "
        f"its first event; keep-alives every {sizes['idle_ping']:g} s where the "
        f"implementation has them (target: each within {results['late_target_ms']:g} ms of "
        f"due), watched for {sizes['idle_window']:g} s. One fresh server each.",
        "",
    ]
    if results.get("idle_note"):
        lines += [f"Note: {results['idle_note']}.", ""]
    lines += [head.replace("| |", "| | unit |", 1), rule + "---|"]
    for key, label, unit in IDLE_ROWS:
        cells = [_cell(results, impl, key, ratio=key in ("idle_kib", "idle_cpu"))
                 for impl in impls]  # fmt: skip
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_fanout(results: Results) -> list[str]:
    fanout = results.get("fanout", [])
    counts = results["sizes"].get("hub_subscribers", [])
    if not any(f"hub_rate_{c}" in results["medians"].get(impl["name"], {})
               for impl in fanout for c in counts):  # fmt: skip
        return []
    base = fanout[0]["name"]
    lines = [
        f"### Fan-out: {results['sizes']['hub_events']} events at 10/s to every subscriber",
        "",
        "| subscribers | " + " | ".join(
            f"{impl['label']}: {what}" for impl in fanout
            for what in ("deliveries per CPU-second", "latency p50, ms", "p99, ms")) + " |",
        "|---|" + "---|" * (3 * len(fanout)),
    ]
    for count in counts:
        cells = []
        for impl in fanout:
            medians = results["medians"].get(impl["name"], {})
            rate = medians.get(f"hub_rate_{count}")
            base_rate = results["medians"].get(base, {}).get(f"hub_rate_{count}")
            text = "n/a" if rate is None else format_value(rate)
            if rate is not None and base_rate and impl["name"] != base:
                text += f" ({rate / base_rate:.2f})"
            cells += [text, *(format_value(medians[key]) if key in medians else "n/a"
                              for key in (f"hub_p50_{count}", f"hub_p99_{count}"))]
        lines.append(f"| {count:,} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_chart(results: Results, path: Path) -> bool:
    """Curves of chunks/s and CPU per chunk against concurrency, and the idle
    figures as bars, every implementation on each chart; False without matplotlib."""
    try:
        import matplotlib  # optional: the ``bench`` extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    impls = results["implementations"]
    conns = results["sizes"]["conns"]
    fig, axes = plt.subplots(3, 2, figsize=(15, 14))
    for ax, key, title in (
        (axes[0][0], "chunks", "aggregate 16 B chunks/s (higher is better)"),
        (axes[0][1], "cpu", "server CPU per chunk, µs (lower is better)"),
    ):
        for index, impl in enumerate(impls):
            points = [(c, _value(results, impl["name"], f"{key}_{c}")) for c in conns]
            xs = [c for c, v in points if v is not None]
            ys = [v for _, v in points if v is not None]
            if xs:
                ax.plot(xs, ys, marker="o", label=impl["label"], color=f"C{index}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent streams")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    if any(ax.get_lines() for ax in axes[0]):
        axes[0][0].legend(fontsize=7)
    held = results.get("idle_held") or results["sizes"]["idle_count"]
    for ax, key, title in (
        (axes[1][0], "idle_kib", f"memory per idle SSE connection, {held:,} open (KiB)"),
        (axes[1][1], "idle_p99", "keep-alive lateness p99 (ms; line: the target)"),
    ):
        names = [impl for impl in impls if _value(results, impl["name"], key) is not None]
        values = [_value(results, impl["name"], key) or 0.0 for impl in names]
        bars = ax.bar(range(len(names)), values, color=[f"C{impls.index(i)}" for i in names])
        ax.bar_label(bars, labels=[format_value(v) for v in values], fontsize=7)
        ax.set_xticks(range(len(names)), [impl["label"] for impl in names], fontsize=7,
                      rotation=20, ha="right")  # fmt: skip
        ax.set_title(title, fontsize=10)
    axes[1][1].axhline(results["late_target_ms"], color="red", linewidth=0.8)
    fanout, counts = results.get("fanout", []), results["sizes"].get("hub_subscribers", [])
    for ax, key, title in (
        (axes[2][0], "hub_rate", "fan-out: deliveries per server CPU-second (higher is better)"),
        (axes[2][1], "hub_p99", "fan-out: delivery latency p99, ms (lower is better)"),
    ):
        width = 0.8 / max(1, len(fanout))
        for index, impl in enumerate(fanout):
            values = [_value(results, impl["name"], f"{key}_{c}") or 0.0 for c in counts]
            xs = [x + (index - (len(fanout) - 1) / 2) * width for x in range(len(counts))]
            bars = ax.bar(xs, values, width, label=impl["label"], color=f"C{index + 7}")
            ax.bar_label(bars, labels=[format_value(v) for v in values], fontsize=7)
        ax.set_xticks(range(len(counts)), [f"{c:,} subscribers" for c in counts])
        ax.set_title(title, fontsize=10)
        if fanout:
            ax.legend(fontsize=7)
    fig.suptitle(f"the cost curve ({results['mode']} run, {results['environment']['date']})",
                 fontsize=11)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
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
