#!/usr/bin/env python3
"""Table and ratios from bench_index's JSON (vigil.json) and index_peers.py's last line."""

import json
import sys

TARGET_RECALL = 0.95


def main():
    vigil = json.load(open(sys.argv[1]))
    peers = json.load(open(sys.argv[2]))["peers"]
    report = vigil["report"]
    memory = report["memory"]
    bandwidth = vigil["read_bandwidth"]["gigabytes_per_second"]
    rows = memory["rows"]
    print(f"rows {rows} ({report['mated_gallery_rows']} LFW), queries {report['queries']}, "
          f"threads {report['threads']}, measured read bandwidth {bandwidth:.1f} GB/s")
    print(f"vigil build: segments {report['build_segments_seconds']:.1f} s, "
          f"IVF-PQ {report['build_ann_seconds']:.1f} s ({report['lists']} lists)")
    threshold = report.get("match_threshold")
    if threshold is not None:
        print(f"match recall: exact top-10 hits at cosine >= {threshold} "
              f"({report['exact_matches']} over all queries)")
    print()
    print(f"| engine | setting | recall@10 | match recall | q/s one at a time | q/s {report['threads']} in flight | memory MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    lines = []
    for figure in report["figures"]:
        method = figure["method"]
        if method.startswith("exact"):
            size = memory["vectors_f32_bytes"]
        elif method.startswith("int8"):
            size = memory["int8_codes_bytes"] + memory["vectors_f32_bytes"]
        else:
            size = memory["ann_bytes"] + memory["vectors_f32_bytes"]
        size += memory["metadata_bytes"]
        lines.append(("vigil", method, figure["recall_at_k"], figure["single_queries_per_second"],
                      figure["parallel_queries_per_second"], size, figure.get("match_recall")))
    for figure in peers:
        lines.append((figure["engine"], figure["setting"], figure["recall_at_k"],
                      figure["single_queries_per_second"], figure["parallel_queries_per_second"],
                      figure["memory_bytes"], figure.get("match_recall")))
    for engine, setting, recall, single, parallel, size, matches in lines:
        shown = "–" if matches is None else f"{matches:.3f}"
        print(f"| {engine} | {setting} | {recall:.3f} | {shown} | {single:.1f} | {parallel:.1f} | {size / 1e6:.0f} |")
    print()
    exact = next(line for line in lines if line[1].startswith("exact"))
    flat = next((line for line in lines if line[1] == "IndexFlatIP"), None)
    scanned = exact[3] * memory["vectors_f32_bytes"] / 1e9
    print(f"exact: vigil {exact[3]:.1f} q/s = {scanned:.1f} GB/s scanned, "
          f"{100 * scanned / bandwidth:.0f}% of measured bandwidth")
    if flat:
        print(f"exact ratio vs faiss IndexFlatIP: one at a time {exact[3] / flat[3]:.2f}x, "
              f"in flight {exact[4] / flat[4]:.2f}x")

    def best(engine, prefix, column, measure):
        fitting = [l for l in lines if l[0] == engine and l[1].startswith(prefix)
                   and l[measure] is not None and l[measure] >= TARGET_RECALL]
        return max(fitting, key=lambda l: l[column], default=None)

    for measure, label in [(2, "recall@10"), (6, "match recall")]:
        for column, name in [(3, "one at a time"), (4, "in flight")]:
            ours = best("vigil", "IVF-PQ", column, measure) or best("vigil", "int8", column, measure)
            for engine, prefix in [("faiss", "IVF"), ("hnswlib", "M")]:
                theirs = best(engine, prefix, column, measure)
                if ours and theirs:
                    print(f"ANN at {label} >= {TARGET_RECALL} ({name}): vigil {ours[1]} {ours[column]:.1f} q/s "
                          f"vs {engine} {theirs[1]} {theirs[column]:.1f} q/s = {ours[column] / theirs[column]:.2f}x, "
                          f"memory {ours[5] / theirs[5]:.2f}x")
                else:
                    print(f"ANN at {label} ({name}) vs {engine}: no setting reached {TARGET_RECALL} "
                          f"(vigil: {ours and ours[1]}, {engine}: {theirs and theirs[1]})")


if __name__ == "__main__":
    main()
