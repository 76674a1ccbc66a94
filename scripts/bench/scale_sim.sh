#!/usr/bin/env bash
# Scale simulation (docs/design/005-index-at-scale.md): N local shard processes and a
# coordinator that fans out and merges; prints one JSON line per configuration.
#   scripts/bench/scale_sim.sh                     # int8 scan, 1-8 shards, 50k and 200k rows each
#   METHOD=ann ROWS=200000 SHARDS=1,2,4 scripts/bench/scale_sim.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARDS=${SHARDS:-1,2,4,8}
ROWS=${ROWS:-50000,200000}
METHOD=${METHOD:-int8}
QUERIES=${QUERIES:-200}
cargo build --release -p vigil-bench --example shard_sim >&2
target_dir=${CARGO_TARGET_DIR:-target}
"$target_dir/release/examples/shard_sim" --shards "$SHARDS" --rows-per-shard "$ROWS" \
  --method "$METHOD" --queries "$QUERIES" --threads-per-shard 1
