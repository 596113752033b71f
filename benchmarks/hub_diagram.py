"""Draw the README's fan-out diagram: ``python -m benchmarks.hub_diagram``
writes ``benchmarks/hub_fanout.png`` (matplotlib, the ``bench`` extra).

publisher -> Redis (one script: offset, history, notify) -> one reader per
worker -> the same bytes to every subscriber of that worker.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).with_name("hub_fanout.png")


def box(axes: Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    axes.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                  facecolor=color, edgecolor="#333333", linewidth=1.2))
    axes.text(x, y, text, ha="center", va="center", fontsize=9)


def arrow(axes: Axes, start: tuple[float, float], end: tuple[float, float],
          label: str = "") -> None:
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                                   color="#444444", linewidth=1.1))
    if label:
        axes.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.025, label,
                  ha="center", fontsize=7.5, color="#444444")


def main() -> None:
    figure, axes = plt.subplots(figsize=(10, 4.6), dpi=120)
    axes.set_xlim(-0.03, 1.0)
    axes.set_ylim(0, 1)
    axes.axis("off")
    box(axes, 0.09, 0.5, 0.15, 0.16, "publisher\nhub.publish()\n(any worker, a script)",
        "#fde2c8")
    box(axes, 0.34, 0.5, 0.2, 0.34, "Redis\n\none Lua script:\nnext offset + epoch\n"
        "XADD history (MAXLEN)\nEXPIRE (ttl)\nPUBLISH", "#f8c9c9")
    arrow(axes, (0.17, 0.5), (0.24, 0.5), "SSE bytes,\nencoded once")
    workers = [0.82, 0.5, 0.18]
    for index, y in enumerate(workers, start=1):
        box(axes, 0.62, y, 0.17, 0.14, f"worker {index}: one reader\n(one pub/sub connection)\n"
            "id line added once", "#d6e6f7")
        arrow(axes, (0.44, 0.5), (0.535, y), "")
        for offset in (-0.065, 0.0, 0.065):
            box(axes, 0.91, y + offset, 0.1, 0.025, "subscriber", "#dff0d8")
            arrow(axes, (0.705, y), (0.855, y + offset))
    axes.text(0.49, 0.93, "live: one message per worker", fontsize=8, ha="center")
    axes.text(0.78, 0.02, "the same bytes to every subscriber; bounded queue each;\n"
              "resume: history after Last-Event-ID, then live (no gap, no duplicate)",
              fontsize=8, ha="center")
    figure.tight_layout()
    figure.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
