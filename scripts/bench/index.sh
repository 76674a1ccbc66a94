#!/usr/bin/env bash
# Index benchmark: vigil's segmented index beside faiss-cpu (IndexFlatIP, IVF-PQ + re-rank) and
# hnswlib, in one run, on the same data and the same number of threads. Prints a table.
#   scripts/bench/index.sh                  # 1M rows (+ LFW mated gallery when cached)
#   ROWS=200000 NPROBE=16,64 scripts/bench/index.sh
#   SYNTHETIC=uniform scripts/bench/index.sh     # the built-in uniform-centre rows
#   PEER_FLAGS="--skip-flat --skip-hnsw" NPROBE=128,256 scripts/bench/index.sh   # IVF-PQ only
# SYNTHETIC=face-like (the default when the LFW cache exists) draws the synthetic rows from a
# Gaussian fitted to real LFW embeddings (scripts/bench/face_like_rows.py).
# The peers run in a venv this script creates (target/bench-venv, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
THREADS=${THREADS:-2}
QUERIES=${QUERIES:-256}
NPROBE=${NPROBE:-16,32,64,128}
RERANK=${RERANK:-200}
HNSW_EF=${HNSW_EF:-32,64,128,256,512}
VENV=${VIGIL_BENCH_VENV:-target/bench-venv}
WORK=${WORK:-target/bench-index-work}
LFW_CACHE=${LFW_CACHE:-.vigil/cache/lfw-default-scrfd_2.5g-w600k_mbf_int8.bin}
SYNTHETIC=${SYNTHETIC:-face-like}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import faiss, hnswlib' 2>/dev/null; then
  echo "creating $VENV (faiss-cpu, hnswlib, numpy from PyPI)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q faiss-cpu==1.15.1 hnswlib==0.8.0 numpy
fi
mkdir -p "$WORK"
mated=()
if [ -f "$LFW_CACHE" ]; then
  "$VENV/bin/python" scripts/bench/lfw_mated.py "$LFW_CACHE" "$WORK/lfw" --queries "$QUERIES" >&2
  mated=(--mated "$WORK/lfw")
  if [ "$SYNTHETIC" = face-like ]; then
    "$VENV/bin/python" scripts/bench/face_like_rows.py "$LFW_CACHE" "$WORK/face_like.f32" \
      --rows "$ROWS" > "$WORK/face_like.json"
    cat "$WORK/face_like.json" >&2
    mated+=(--rows-file "$WORK/face_like.f32")
  fi
else
  echo "no LFW embedding cache at $LFW_CACHE (vigil eval lfw writes it): uniform synthetic rows" \
    "and synthetic queries only" >&2
fi
cargo build --release -p vigil-bench --example bench_index >&2
target_dir=${CARGO_TARGET_DIR:-target}
"$target_dir/release/examples/bench_index" --rows "$ROWS" --threads "$THREADS" \
  --queries "$QUERIES" --nprobe "$NPROBE" --rerank "$RERANK" --dir "$WORK/index" \
  --dump "$WORK/dump" "${mated[@]}" > "$WORK/vigil.json"
"$VENV/bin/python" scripts/bench/index_peers.py "$WORK/dump" --threads "$THREADS" \
  --hnsw-ef "$HNSW_EF" ${PEER_FLAGS:-} > "$WORK/peers.log"
tail -n 1 "$WORK/peers.log" > "$WORK/peers.json"
rm -f "$WORK/dump/rows.f32" "$WORK/face_like.f32"
"$VENV/bin/python" scripts/bench/index_table.py "$WORK/vigil.json" "$WORK/peers.json"
