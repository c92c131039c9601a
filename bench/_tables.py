"""What the benchmark scripts share: their tables, printed as markdown (BENCHMARKS.md quotes them), and
the peak memory of the process a route ran in."""

from __future__ import annotations

import pandas as pd


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peak_gib(field: str = "VmHWM") -> float:
    """This process's peak resident memory (VmHWM, Linux), GiB: all of it, an embedded R or Python too.
    ``field``: another line of /proc/self/status, e.g. "RssFile" (resident now, of files mapped: pages
    the kernel can drop and read again, unlike the rest)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")
