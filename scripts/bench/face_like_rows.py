#!/usr/bin/env python3
"""Synthetic gallery rows drawn from the distribution of real face embeddings.

Usage: face_like_rows.py CACHE_FILE OUT_FILE --rows N [--per-identity 8] [--seed 11]

Uniform random centres (the index benchmark's built-in generator) put a synthetic gallery
everywhere on the sphere, far from where real faces lie; the real queries' neighbours then
sit in a region the IVF lists and the HNSW graph hardly cover. This draws the gallery from a
two-covariance (PLDA-style: Ioffe 2006, Prince & Elder 2007) Gaussian fitted to vigil's LFW
embedding cache (`vigil eval lfw`): an identity's centre is mean + N(0, between-identity
covariance), each of its rows adds N(0, within-identity covariance), then the row is
normalised. Only the mean and the two covariances are taken from LFW; no real embedding is
copied. Row r belongs to synthetic identity r mod (N / per-identity), as in the built-in
generator. Writes N little-endian f32 rows and prints the fit's summary as JSON.
"""

import argparse
import json
import sys
from collections import defaultdict

import numpy as np

from lfw_mated import read_cache

CHUNK_ROWS = 65536


def factor(covariance):
    """A matrix F with F @ F.T = covariance, negative eigenvalues (estimation noise) clipped."""
    values, vectors = np.linalg.eigh(covariance)
    values = np.clip(values, 0.0, None)
    return vectors * np.sqrt(values), values


def participation_ratio(values):
    """Effective number of dimensions of a spectrum: (sum λ)² / sum λ²."""
    return float(values.sum() ** 2 / max((values**2).sum(), 1e-30))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("out_file")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--per-identity", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    arguments = parser.parse_args()
    if arguments.rows <= 0 or arguments.per_identity <= 0:
        sys.exit("--rows and --per-identity must be positive")

    by_identity = defaultdict(list)
    for name, values in sorted(read_cache(arguments.cache).items()):
        by_identity[name.split("/")[-2]].append(values / np.linalg.norm(values))
    everything = np.array([v for images in by_identity.values() for v in images], dtype=np.float64)
    mean = everything.mean(axis=0)
    total = np.cov(everything, rowvar=False)
    deviations = []
    for images in by_identity.values():
        if len(images) < 2:
            continue
        images = np.array(images, dtype=np.float64)
        # unbiased: a deviation from the sample mean of n images is shrunk by (n-1)/n
        scale = np.sqrt(len(images) / (len(images) - 1))
        deviations.append((images - images.mean(axis=0)) * scale)
    deviations = np.concatenate(deviations)
    within = deviations.T @ deviations / len(deviations)
    between_factor, between_values = factor(total - within)
    within_factor, within_values = factor(within)

    identities = max(1, arguments.rows // arguments.per_identity)
    rng = np.random.default_rng(arguments.seed)
    dimension = len(mean)
    centres = mean + rng.standard_normal((identities, dimension)) @ between_factor.T
    with open(arguments.out_file, "wb") as out:
        for start in range(0, arguments.rows, CHUNK_ROWS):
            rows = np.arange(start, min(start + CHUNK_ROWS, arguments.rows))
            values = centres[rows % identities] + rng.standard_normal((len(rows), dimension)) @ within_factor.T
            values /= np.linalg.norm(values, axis=1, keepdims=True)
            out.write(values.astype("<f4").tobytes())
            print(f"face-like rows: {rows[-1] + 1}/{arguments.rows}", file=sys.stderr, flush=True)
    summary = {
        "rows": arguments.rows,
        "identities": identities,
        "fitted_on_images": len(everything),
        "fitted_on_identities": len(by_identity),
        "between_effective_dimensions": participation_ratio(between_values),
        "within_effective_dimensions": participation_ratio(within_values),
        "mean_norm": float(np.linalg.norm(mean)),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
