"""Peak memory of registering a large CSV through the local dataset service.

Builds a CSV of the requested size by repeating the Bank Marketing rows (or synthetic rows when
the sample is absent), then registers it in a fresh child process on a temporary workspace and
reports the child's peak RSS above its baseline (imports done, file not yet read) as a multiple
of the file size. The file's own bytes count: the dashboard holds them while it registers them.

    .venv/bin/python bench/upload_memory.py [--size-mb 200] [--data CSV]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SYNTHETIC_HEADER = b"age,job,marital,balance,contact,day,duration,campaign,y\n"


def build_csv(path: Path, size_bytes: int, sample: Path | None) -> int:
    """Write a CSV of about `size_bytes` by repeating sample rows; returns the row count."""
    if sample is not None and sample.is_file():
        header, _, body = sample.read_bytes().partition(b"\n")
        header += b"\n"
    else:
        header = SYNTHETIC_HEADER
        lines = [
            f"{20 + i % 60},job{i % 12},m{i % 3},{(i * 37) % 9000 - 500},cell,{i % 31},"
            f"{(i * 13) % 2000},{i % 9},{'yes' if i % 7 == 0 else 'no'}\n"
            for i in range(20_000)
        ]
        body = "".join(lines).encode()
    if not body.endswith(b"\n"):
        body += b"\n"
    rows_per_block = body.count(b"\n")
    written, rows = len(header), 0
    with path.open("wb") as f:
        f.write(header)
        while written + len(body) <= size_bytes:
            f.write(body)
            written += len(body)
            rows += rows_per_block
        # Top up with whole lines to land close to the requested size.
        for line in body.splitlines(keepends=True):
            if written + len(line) > size_bytes:
                break
            f.write(line)
            written += len(line)
            rows += 1
    return rows


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(csv_path: Path, home: Path) -> None:
    """Register the file once and print a JSON line with the memory numbers."""
    from lib.local.datasets import LocalDatasets
    from lib.local.store import Store
    from lib.settings import UploadLimits

    size = csv_path.stat().st_size
    limits = UploadLimits(max_upload_bytes=size + 1, max_rows=10**9)
    datasets = LocalDatasets(Store(home), limits=limits)
    baseline = current_rss_bytes()
    before_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    data = csv_path.read_bytes()
    dv = datasets.upload("big", data, csv_path.name)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "size": size,
                "rows": dv.rows,
                "columns": dv.columns,
                "baseline": baseline,
                "peak_before": before_peak,
                "peak": peak,
                "seconds": elapsed,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200, help="CSV size in MB (10^6 bytes)")
    ap.add_argument("--data", type=Path, default=None, help="CSV whose rows are repeated")
    ap.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from lib.settings import find_sample_data

    sample = args.data or find_sample_data()
    with tempfile.TemporaryDirectory(prefix="opsdeck-upload-bench-") as tmp:
        csv_path = Path(tmp) / "big.csv"
        rows = build_csv(csv_path, args.size_mb * 1_000_000, sample)
        source = sample.name if sample is not None and sample.is_file() else "synthetic rows"
        print(f"file: {csv_path.stat().st_size / 1e6:.1f} MB, {rows:,} rows ({source})")
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(csv_path), str(Path(tmp) / "home")],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        if out.returncode != 0:
            sys.exit(f"child failed:\n{out.stderr[-4000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    size = result["size"]
    extra = result["peak"] - result["baseline"]
    print(
        f"baseline RSS {result['baseline'] / 1e6:.0f} MB, peak RSS {result['peak'] / 1e6:.0f} MB, "
        f"registered {result['rows']:,} rows x {result['columns']} columns "
        f"in {result['seconds']:.1f} s"
    )
    print(f"upload: {size / 1e6:.0f} MB CSV, peak {extra / size:.1f}× file size")


if __name__ == "__main__":
    main()
