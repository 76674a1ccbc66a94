#!/usr/bin/env python3
"""faiss (IndexFlatIP, IVF-PQ + exact re-rank) and hnswlib on the data dumped by vigil's
index benchmark (`cargo run --release -p vigil-bench --example bench_index -- --dump DIR`).

Usage: index_peers.py DUMP_DIR [--threads T] [--hnsw-m 16] [--hnsw-ef-construction 100]
       [--hnsw-ef 16,32,64,128] [--skip-flat] [--skip-hnsw]

Same rows, queries, k, thread count, list count, bytes per code and re-rank depth as vigil;
recall@k is measured against vigil's exact top-k (truth_ids.i64); match recall against those
of its hits at or above the match threshold (truth_scores.f32, meta.json): the candidates a
search would report. Prints JSON.
"""

import argparse
import json
import os
import tempfile
import time

# passive OpenMP waiting was faiss's best setting on a shared 2-core machine (see BENCHMARKS.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402


def recall(ids, truth):
    hits = sum(len(set(found) & set(exact[exact >= 0])) for found, exact in zip(ids, truth))
    return hits / max(1, int((truth >= 0).sum()))


def match_recall(ids, truth, truth_scores, threshold):
    matches = truth_scores >= threshold
    total = int(matches.sum())
    if total == 0:
        return None
    hits = sum(len(set(found) & set(exact[wanted])) for found, exact, wanted in zip(ids, truth, matches))
    return hits / total


def timed_single(search, queries):
    search(queries[:1])
    started = time.perf_counter()
    ids = [search(queries[i : i + 1])[0] for i in range(len(queries))]
    return len(queries) / (time.perf_counter() - started), np.array(ids)


def timed_batch(search, queries):
    started = time.perf_counter()
    ids = search(queries)
    return len(queries) / (time.perf_counter() - started), ids


def faiss_bytes(index):
    return int(faiss.serialize_index(index).size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-ef-construction", type=int, default=100)
    parser.add_argument("--hnsw-ef", default="16,32,64,128,256")
    parser.add_argument("--skip-flat", action="store_true")
    parser.add_argument("--skip-hnsw", action="store_true")
    arguments = parser.parse_args()
    faiss.omp_set_num_threads(arguments.threads)

    with open(os.path.join(arguments.dump_dir, "meta.json")) as handle:
        meta = json.load(handle)
    rows, dimension, k = meta["rows"], meta["dimension"], meta["k"]
    data = np.fromfile(os.path.join(arguments.dump_dir, "rows.f32"), dtype="<f4")
    data = data.reshape(rows, dimension)
    queries = np.fromfile(os.path.join(arguments.dump_dir, "queries.f32"), dtype="<f4")
    queries = queries.reshape(-1, dimension)
    truth = np.fromfile(os.path.join(arguments.dump_dir, "truth_ids.i64"), dtype="<i8")
    truth = truth.reshape(len(queries), k)
    truth_scores = np.fromfile(os.path.join(arguments.dump_dir, "truth_scores.f32"), dtype="<f4")
    truth_scores = truth_scores.reshape(len(queries), k)
    threshold = meta["match_threshold"]
    figures = []

    def record(engine, setting, build_seconds, memory_bytes, single, batch, ids):
        figures.append(
            {
                "engine": engine,
                "setting": setting,
                "build_seconds": build_seconds,
                "memory_bytes": memory_bytes,
                "single_queries_per_second": single,
                "parallel_queries_per_second": batch,
                "recall_at_k": recall(ids, truth),
                "match_recall": match_recall(ids, truth, truth_scores, threshold),
            }
        )
        print(json.dumps(figures[-1]), flush=True)

    if not arguments.skip_flat:
        started = time.perf_counter()
        flat = faiss.IndexFlatIP(dimension)
        flat.add(data)
        build = time.perf_counter() - started
        search = lambda q: flat.search(q, k)[1]  # noqa: E731
        single, _ = timed_single(search, queries)
        batch, ids = timed_batch(search, queries)
        record("faiss", "IndexFlatIP", build, faiss_bytes(flat), single, batch, ids)
        del flat

    # IVF-PQ with the same lists, 8-bit codes of the same size and an exact f32 re-rank of
    # the same depth (IndexRefineFlat), trained on the same number of points per list
    lists, sub_quantizers = meta["lists"], meta["sub_quantizers"]
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dimension)
    ivfpq = faiss.IndexIVFPQ(quantizer, dimension, lists, sub_quantizers, 8, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(7)
    sample = data[rng.choice(rows, size=min(rows, max(lists * 64, 256 * 64)), replace=False)]
    ivfpq.train(sample)
    refine = faiss.IndexRefineFlat(ivfpq)
    refine.add(data)
    build = time.perf_counter() - started
    memory = faiss_bytes(refine)
    refine.k_factor = meta["rerank"] / k
    for nprobe in meta["nprobes"]:
        ivfpq.nprobe = nprobe
        search = lambda q: refine.search(q, k)[1]  # noqa: E731
        single, _ = timed_single(search, queries)
        batch, ids = timed_batch(search, queries)
        setting = f"IVF{lists},PQ{sub_quantizers} nprobe {nprobe} re-rank {meta['rerank']}"
        record("faiss", setting, build, memory, single, batch, ids)
    del refine, ivfpq

    if not arguments.skip_hnsw:
        import hnswlib

        started = time.perf_counter()
        graph = hnswlib.Index(space="ip", dim=dimension)
        graph.init_index(max_elements=rows, M=arguments.hnsw_m,
                         ef_construction=arguments.hnsw_ef_construction, random_seed=7)
        graph.set_num_threads(arguments.threads)
        graph.add_items(data, np.arange(rows))
        build = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "hnsw.bin")
            graph.save_index(path)
            memory = os.path.getsize(path)
        for ef in [int(e) for e in arguments.hnsw_ef.split(",") if e]:
            graph.set_ef(max(ef, k))
            single, _ = timed_single(lambda q: graph.knn_query(q, k=k, num_threads=1)[0], queries)
            batch, ids = timed_batch(
                lambda q: graph.knn_query(q, k=k, num_threads=arguments.threads)[0], queries
            )
            setting = f"M{arguments.hnsw_m} efC{arguments.hnsw_ef_construction} ef {ef}"
            record("hnswlib", setting, build, memory, single, batch, ids)

    print(json.dumps({"peers": figures, "faiss_version": faiss.__version__}))


if __name__ == "__main__":
    main()
