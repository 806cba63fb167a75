"""Files per second of ``genrekit classify`` on the local pool and on Ray, on the same files, in one run.

    python bench/bench_ray.py [--jobs 1 2] [--repeat 3] [--model BUNDLE] [--json FILE]

The files are the 70 shared GTZAN clips (30 s) and the 469 shared excerpts (2-3 s),
539 files, 145 MB of WAV. The job is what ``genrekit classify DIR --out results.jsonl``
does: hash each file, classify it with a timeline (default: the bundled model), store
the result (fsynced JSON line) as it arrives, in a fresh results file each time.

For each ``N`` of ``--jobs``:

- **local**: :class:`genrekit.engines.local.LocalEngine` with ``N`` processes (pool
  start and model loading included: that is what every run pays);
- **ray**: a Ray instance on this machine with ``N`` CPUs
  (:class:`genrekit.engines.ray.RayEngine`). Its **start-up** (``ray.init``, the
  start-up check, the first file: worker start, model sent and loaded) is timed on its
  own, then the whole job on the running instance.

Printed: the median of ``--repeat`` runs of each, files per second, the ratio Ray /
local, Ray's fixed start-up cost, and the driver's CPU seconds per file (hashing,
storing, talking to workers): ``1 / that`` bounds the files per second one driver can
feed, however many nodes the cluster has. BLAS/OpenMP threads are set to 1 so that
``N`` processes use ``N`` cores.
"""

from __future__ import annotations

import os

# No thread variables here: genrekit is measured as a user runs it (issue 31); it holds its own
# workers at one BLAS thread (genrekit.engines.threads).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO / "../shared/data"))


def job(paths, model, engine, folder: Path) -> tuple[float, float, int]:
    """One classify job into a fresh results file: (wall s, driver CPU s, files done)."""
    from genrekit.library.run import LibraryRun
    from genrekit.library.results import open_results

    out = folder / f"results-{time.monotonic_ns()}.jsonl"
    start, cpu = time.perf_counter(), time.process_time()
    with open_results(out) as store:
        run = LibraryRun(paths, model, store=store, engine=engine, progress=False)
        for _ in run:
            pass
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.unlink()
    if run.summary.failed:
        print(f"  {len(run.summary.failed)} failed, e.g. {run.summary.failed[0]}", file=sys.stderr)
    return wall, cpu, run.summary.done


def bench_local(paths, model, jobs: int, repeat: int, folder: Path) -> dict:
    from genrekit.engines.local import LocalEngine

    runs = [job(paths, model, LocalEngine(jobs), folder) for _ in range(repeat)]
    return _summarise(runs, len(paths))


def bench_ray(paths, model, jobs: int, repeat: int, folder: Path) -> dict:
    from genrekit.engines.ray import RayEngine

    startups, runs = [], []
    for _ in range(repeat):
        engine = RayEngine(jobs=jobs)
        try:
            start = time.perf_counter()
            engine.start()
            job(paths[:1], model, engine, folder)  # check, first worker, model sent and loaded
            startups.append(time.perf_counter() - start)
            runs.append(job(paths, model, engine, folder))
        finally:
            engine.close()
    result = _summarise(runs, len(paths))
    result["startup_s"] = statistics.median(startups)
    result["startups_s"] = startups
    return result


def _summarise(runs, n: int) -> dict:
    walls = [w for w, _, _ in runs]
    wall = statistics.median(walls)
    return {"wall_s": wall, "walls_s": walls, "files_per_s": n / wall,
            "driver_cpu_ms_per_file": 1000 * statistics.median(c for _, c, _ in runs) / n,
            "done": min(d for _, _, d in runs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker processes to try (1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the median is printed (3)")
    parser.add_argument("--model", type=Path, help="model bundle (default: the bundled one)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    try:
        import ray  # noqa: F401
    except ImportError:
        print("bench_ray needs Ray: pip install 'genrekit[ray]'", file=sys.stderr)
        return 2
    genres, excerpts = SHARED / "gtzan" / "genres", SHARED / "gtzan" / "excerpts"
    if not genres.is_dir() or not excerpts.is_dir():
        print(f"shared data not found under {SHARED} (set GENREKIT_SHARED_DATA)", file=sys.stderr)
        return 2
    from genrekit.audio.files import collect_audio_files
    from genrekit.models.registry import load_model

    paths = collect_audio_files([genres, excerpts])
    size = sum(p.stat().st_size for p in paths)
    model = load_model(args.model)
    print(f"{len(paths)} files ({size / 1e6:.0f} MB): 70 clips + {len(paths) - 70} excerpts; model {model.name}; "
          f"{os.cpu_count()} CPUs; median of {args.repeat}")
    figures = {"files": len(paths), "bytes": size, "repeat": args.repeat, "cpus": os.cpu_count(), "jobs": {}}
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        print(f"{'N':>3} {'local files/s':>14} {'ray files/s':>12} {'ray/local':>10} {'ray start-up s':>15} "
              f"{'driver ms/file (local, ray)':>28}")
        for n in args.jobs:
            local = bench_local(paths, model, n, args.repeat, folder)
            remote = bench_ray(paths, model, n, args.repeat, folder)
            ratio = remote["files_per_s"] / local["files_per_s"]
            figures["jobs"][n] = {"local": local, "ray": remote, "ratio": ratio}
            print(f"{n:>3} {local['files_per_s']:>14.2f} {remote['files_per_s']:>12.2f} {ratio:>10.2f} "
                  f"{remote['startup_s']:>15.1f} {local['driver_cpu_ms_per_file']:>14.1f}"
                  f"{remote['driver_cpu_ms_per_file']:>14.1f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("local: pool start and model loading included; ray: on a running instance, start-up apart")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
