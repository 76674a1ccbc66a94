#!/usr/bin/env python3
"""faiss IndexFlatIP on the data dumped by vigil's exact-search benchmark.

Usage: faiss_flat.py DUMP_DIR [--threads T] [--k K] [--batch-sizes 64,256]

Reads rows.f32, queries.f32, truth_templates.i64, truth_scores.f32 and meta.json written by
`vigil_bench::exact::run_exact` (dump_dir), times a single-query loop and batched searches with
the same batch sizes, checks faiss's top-1 against vigil's, and prints JSON.
"""

import argparse
import json
import os
import sys
import time

# OpenMP threads that spin while waiting made faiss 2-10x slower on a shared 2-core machine;
# passive waiting is its best setting there. Set OMP_WAIT_POLICY to override (read at import).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

# A different row at the same score (to float rounding) is a tie, not a disagreement.
TIE_TOLERANCE = 1e-5


def load(dump_dir):
    with open(os.path.join(dump_dir, "meta.json")) as handle:
        meta = json.load(handle)
    rows, dimension, queries, k = meta["rows"], meta["dimension"], meta["queries"], meta["k"]

    def read(name, dtype, shape):
        values = np.fromfile(os.path.join(dump_dir, name), dtype=dtype)
        if values.size != shape[0] * shape[1]:
            sys.exit(f"{name}: expected {shape[0] * shape[1]} values, found {values.size}")
        return values.reshape(shape)

    data = read("rows.f32", "<f4", (rows, dimension))
    query_values = read("queries.f32", "<f4", (queries, dimension))
    truth_templates = read("truth_templates.i64", "<i8", (queries, k))
    truth_scores = read("truth_scores.f32", "<f4", (queries, k))
    return meta, data, query_values, truth_templates, truth_scores


def agreement(ids, scores, truth_templates, truth_scores):
    """Top-1 agreement with vigil (ties allowed) and recall@k of vigil's top-k."""
    top1 = np.mean(
        (ids[:, 0] == truth_templates[:, 0])
        | (np.abs(scores[:, 0] - truth_scores[:, 0]) < TIE_TOLERANCE)
    )
    hits = sum(len(set(found) & set(truth)) for found, truth in zip(ids, truth_templates))
    recall = hits / truth_templates.size
    return float(top1), float(recall)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump_dir")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--k", type=int, default=None, help="defaults to the dump's k")
    parser.add_argument("--batch-sizes", default="64,256")
    arguments = parser.parse_args()

    faiss.omp_set_num_threads(arguments.threads)
    meta, data, queries, truth_templates, truth_scores = load(arguments.dump_dir)
    k = arguments.k or meta["k"]
    rows, dimension = data.shape

    started = time.perf_counter()
    index = faiss.IndexFlatIP(dimension)
    index.add(data)
    build_seconds = time.perf_counter() - started
    del data

    index.search(queries[:1], k)  # warm-up

    def figure(mode, batch, seconds, ids, scores):
        queries_per_second = len(queries) / seconds
        top1, recall = agreement(ids, scores, truth_templates, truth_scores)
        return {
            "mode": mode,
            "batch": batch,
            "threads": arguments.threads,
            "rows": rows,
            "dimension": dimension,
            "k": k,
            "queries_per_second": queries_per_second,
            "scanned_gigabytes_per_second": queries_per_second / batch * rows * dimension * 4 / 1e9,
            "build_seconds": build_seconds,
            "top1_agreement_with_vigil": top1,
            "recall_of_vigil_top_k": recall,
        }

    figures = []
    ids = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    started = time.perf_counter()
    for position in range(len(queries)):
        found_scores, found_ids = index.search(queries[position : position + 1], k)
        ids[position], scores[position] = found_ids[0], found_scores[0]
    figures.append(figure("single", 1, time.perf_counter() - started, ids, scores))

    for batch in [int(size) for size in arguments.batch_sizes.split(",") if size]:
        started = time.perf_counter()
        for start in range(0, len(queries), batch):
            found_scores, found_ids = index.search(queries[start : start + batch], k)
            ids[start : start + batch], scores[start : start + batch] = found_ids, found_scores
        figures.append(figure("batch", batch, time.perf_counter() - started, ids, scores))

    report = {
        "engine": f"faiss {faiss.__version__} IndexFlatIP",
        "compile_options": faiss.get_compile_options(),
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "figures": figures,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
