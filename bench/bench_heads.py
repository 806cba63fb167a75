"""CPU cost of a 30-s clip under broad-musicnn against the default (gtzan-musicnn), in the same run.

    python bench/bench_heads.py [--model broad-musicnn] [--reference gtzan-musicnn] [--repeat 15]

Both models are heads on the same backbone (MSD-musicnn) with the same patch plan, so they
differ only in the head. Each is loaded once (as in a library run) and classifies the
shared 30-s clip ``blues.00000.wav`` (decode + front end + network + head + unknown decision),
the two alternating so that a busy machine slows both alike; printed: the median CPU seconds
(``time.process_time``, all threads of this process) and wall seconds per call of each, and
the ratio. Target (issue 27): a new default costs at most 10% more CPU than today's.
Thread settings are left as they are: both models run under the same ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
#: Not imported from bench_classify.py, which pins threads on import.
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO / "../shared/data"))


def timed(model, path: Path) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    model.classify_file(path)
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="broad-musicnn", help="the model measured (default %(default)s)")
    parser.add_argument("--reference", default="gtzan-musicnn", help="the model it is compared with")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls of each (default %(default)s)")
    args = parser.parse_args(argv)
    from genrekit.models.registry import load_model

    clip = SHARED / "gtzan/genres/blues/blues.00000.wav"
    ours, ref = load_model(args.model), load_model(args.reference)
    for model in (ours, ref):  # warm up: sessions, caches
        model.classify_file(clip)
    times = {args.model: [], args.reference: []}
    for _ in range(args.repeat):
        for name, model in ((args.model, ours), (args.reference, ref)):
            times[name].append(timed(model, clip))
    med = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
           for name, ts in times.items()}
    for name, (cpu, wall) in med.items():
        print(f"{name:<16} CPU {cpu * 1000:7.1f} ms  wall {wall * 1000:7.1f} ms  per 30-s clip "
              f"(median of {args.repeat})")
    ratio = med[args.model][0] / med[args.reference][0]
    print(f"CPU ratio {args.model} / {args.reference}: {ratio:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
