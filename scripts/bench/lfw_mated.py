#!/usr/bin/env python3
"""Real mated queries for the index benchmark, from vigil's LFW embedding cache.

Usage: lfw_mated.py CACHE_FILE OUT_DIR [--queries N]

CACHE_FILE is written by `vigil eval lfw` (e.g. .vigil/cache/lfw-default-scrfd_2.5g-
w600k_mbf_int8.bin: magic VLFWE1, count u32, then per image: name length u16, name, flags u8,
dimension u16, dimension f32). For every identity with at least two embedded images, the first
image becomes a query and the others go into the gallery, so each query has a true mate.
Writes lfw_gallery.f32 and lfw_queries.f32 (little-endian, unit rows) and lfw_meta.json.
"""

import argparse
import json
import os
import struct
import sys
from collections import defaultdict

import numpy as np


def read_cache(path):
    data = open(path, "rb").read()
    if data[:6] != b"VLFWE1":
        sys.exit(f"{path}: not a vigil LFW embedding cache")
    (count,) = struct.unpack_from("<I", data, 6)
    at = 10
    images = {}
    for _ in range(count):
        (name_length,) = struct.unpack_from("<H", data, at)
        at += 2
        name = data[at : at + name_length].decode()
        at += name_length
        flags = data[at]
        at += 1
        (dimension,) = struct.unpack_from("<H", data, at)
        at += 2
        values = np.frombuffer(data, dtype="<f4", count=dimension, offset=at)
        at += dimension * 4
        if flags & 1 and dimension:
            images[name] = values
    return images


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("out_dir")
    parser.add_argument("--queries", type=int, default=256)
    arguments = parser.parse_args()
    by_identity = defaultdict(list)
    for name, values in sorted(read_cache(arguments.cache).items()):
        by_identity[name.split("/")[-2]].append(values)
    queries, gallery = [], []
    for identity in sorted(by_identity):
        images = by_identity[identity]
        if len(images) < 2:
            continue
        if len(queries) < arguments.queries:
            queries.append(images[0])
            gallery.extend(images[1:])
        else:
            gallery.extend(images)
    os.makedirs(arguments.out_dir, exist_ok=True)

    def unit(rows):
        rows = np.asarray(rows, dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    unit(gallery).astype("<f4").tofile(os.path.join(arguments.out_dir, "lfw_gallery.f32"))
    unit(queries).astype("<f4").tofile(os.path.join(arguments.out_dir, "lfw_queries.f32"))
    meta = {"gallery": len(gallery), "queries": len(queries), "dimension": len(queries[0])}
    with open(os.path.join(arguments.out_dir, "lfw_meta.json"), "w") as handle:
        json.dump(meta, handle)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
