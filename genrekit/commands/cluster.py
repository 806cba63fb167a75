"""``genrekit cluster``: k-means clusters of a feature table against its genres, with a 3-D PCA map."""

from __future__ import annotations

import argparse

from genrekit.commands.common import output_option, positive_int
from genrekit.errors import CommandError

from genrekit.commands.table_data import data_argument, cache_arguments, load_data


def cluster_arguments(p: argparse.ArgumentParser) -> None:
    data_argument(p, "--features")
    p.add_argument("--k", type=positive_int, metavar="K", help="number of clusters (default: the number of genres)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="k-means seed (default 0)")
    output_option(p, "--out", "-o", metavar="FILE",
                   help="JSON with the metrics, the cluster x genre table and the 3-D PCA coordinates (default: none)")
    output_option(p, "--table-out", metavar="FILE", help="the cluster x genre table as CSV (default: none)")
    cache_arguments(p)


def cluster_run(args) -> int:
    from genrekit._io import write_bytes_atomic, write_json_atomic
    from genrekit.errors import ParameterError
    from genrekit.evaluation.cluster import cluster

    table = load_data(args)
    try:
        result = cluster(table.X, table.labels, k=args.k, seed=args.seed, rows=table.rows, tracks=table.tracks,
                         source=table.source)
    except ParameterError as exc:  # a k the table cannot give
        raise CommandError(str(exc)) from exc
    print(f"k-means, k={result.k}, on {len(table.X)} rows ({table.n_tracks} tracks) of {table.source}")
    print(f"ARI {result.ari:.3f}  NMI {result.nmi:.3f}  purity {result.purity:.3f}")
    print(result.table_text())
    if args.out:
        write_json_atomic(args.out, result.to_dict())
    if args.table_out:
        lines = ["cluster," + ",".join(result.genres)]
        lines += [f"{c}," + ",".join(str(n) for n in row) for c, row in enumerate(result.counts)]
        write_bytes_atomic(args.table_out, ("\n".join(lines) + "\n").encode())
    return 0
