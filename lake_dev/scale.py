"""`make bench`'s scale curve: the lake and warehouse steps (bench's lake_assets case: the steps'
own functions, raw already landed) on generated yellow months of growing size, one process each,
with the wall time and the peak memory of the whole process tree. Time should grow with the rows
and memory stay flat: the month is streamed, never held."""

from __future__ import annotations

from pathlib import Path

SIZES = (1_000_000, 5_000_000, 25_000_000)


def run_scale(root: Path, sizes: tuple[int, ...]) -> dict:
    from lake_dev import bench

    scratch = root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    points = []
    for rows in sizes:
        src = bench.month_file(root / "data", rows)
        bench._warm([src])
        m = bench.measure("lake_assets", src, scratch)
        if m["rows"] != rows:
            raise SystemExit(f"scale: {rows:,} rows generated but {m['rows']:,} loaded")
        points.append(
            {
                "rows": rows,
                "source_mb": round(src.stat().st_size / 2**20, 1),
                "wall_s": m["wall_s"],
                "cpu_s": m["cpu_s"],
                "peak_rss_mb": m["peak_rss_mb"],
                "s_per_million_rows": round(m["wall_s"] / rows * 1e6, 3),
            }
        )
        line = f"scale {rows:>12,} rows {m['wall_s']:>7.2f} s {m['peak_rss_mb']:>7.1f} MB"
        print(line, flush=True)
    return {"points": points}


def table(report: dict) -> str:
    points = report["points"]
    lines = [
        "Scale: the lake and warehouse steps in one process on generated yellow months",
        "",
        "| rows | gzip MB | wall s | CPU s | s per million rows | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {p['rows']:,} | {p['source_mb']:.1f} | {p['wall_s']:.2f} | {p['cpu_s']:.2f} | "
            f"{p['s_per_million_rows']:.2f} | {p['peak_rss_mb']:.0f} |"
            for p in points
        ),
    ]
    if len(points) > 1:
        first, last = points[0], points[-1]
        lines += [
            "",
            f"From {first['rows']:,} to {last['rows']:,} rows ({last['rows'] / first['rows']:.0f} "
            f"times): wall time x{last['wall_s'] / first['wall_s']:.1f}, peak memory "
            f"x{last['peak_rss_mb'] / first['peak_rss_mb']:.2f}.",
        ]
    return "\n".join(lines)
