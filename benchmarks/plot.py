"""Render the benchmark's JSON as the picture ``docs/performance.md`` shows.

python benchmarks/plot.py [benchmarks/results/latest.json] [docs/performance.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = ("decode", "pre", "network", "post", "compose", "encode")
COLOURS = {
    "decode": "#8da0cb",
    "pre": "#66c2a5",
    "network": "#fc8d62",
    "post": "#a6d854",
    "compose": "#ffd92f",
    "encode": "#e78ac3",
}


def render(res: dict[str, Any], path: Path) -> None:
    """Stacked per-stage bars, one panel per photo size, with each total and its ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(res["single"])
    fig, axes = plt.subplots(len(sizes), 1, figsize=(10, 3.2 * len(sizes)), squeeze=False)
    for ax, size in zip(axes[:, 0], sizes, strict=True):
        table = res["single"][size]
        names = list(table)[::-1]
        base = table["notebook-openvino"]["total"]
        for i, name in enumerate(names):
            left = 0.0
            for stage in STAGES:
                v = table[name].get(stage, 0.0)
                ax.barh(
                    i,
                    v,
                    left=left,
                    color=COLOURS[stage],
                    edgecolor="white",
                    linewidth=0.5,
                    label=stage if i == 0 else None,
                )
                left += v
            total = table[name]["total"]
            ax.text(left, i, f"  {total:.2f} s ({base / total:.1f}x)", va="center", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel(
            "seconds (best of N interleaved rounds); (Nx) = faster than the notebook's OpenVINO pipeline"
        )
        ax.set_title(f"{size} JPEG -> RGBA PNG, model loaded, one image", fontsize=10)
        ax.set_xlim(0, max(sum(table[n].get(s, 0) for s in STAGES) for n in names) * 1.25)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(STAGES), fontsize=8, frameon=False)
    m = res["machine"]
    fig.suptitle(
        f"rmbg vs the notebook on {m.get('cpu', '?')}, {m.get('cores')} cores "
        f"({', '.join(m.get('isa', []))}), {res.get('started', '')}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else HERE / "results" / "latest.json"
    dst = Path(argv[1]) if len(argv) > 1 else HERE.parent / "docs" / "performance.png"
    render(json.loads(src.read_text()), dst)
    print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
