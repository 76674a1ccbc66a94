#!/usr/bin/env bash
# Disk full: `vigil serve` with its data dir on a small tmpfs (needs root for the mount), four
# recording cameras, the file system filled, then emptied again. Prints what each step answered.
#   scripts/reliability/disk_full.sh [size, default 64m]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
eval "$(scripts/dev env)"
vigil=${VIGIL_BIN:-$root/target/debug/vigil}
media=$(cd "$root/../shared/data/video" && pwd)
size=${1:-64m}
work=$(mktemp -d)
data=$work/data
mkdir -p "$data"
mount -t tmpfs -o size="$size" vigil-disk-full "$data"
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  umount "$data" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export VIGIL_DATA_DIR=$data VIGIL_MODELS_DIR=$root/../shared/models
unset VIGIL_CONFIG VIGIL_SEAL_KEYS
{
  for pair in pause:face-demographics-walking-and-pause walking:face-demographics-walking \
      couple:head-pose-face-detection-female-and-male male:head-pose-face-detection-male; do
    printf '[[cameras]]\nid = "%s"\nurl = "%s.mp4"\nloop_file = true\nrecord = true\nanalysis_fps = 5.0\n\n' \
      "${pair%%:*}" "${pair#*:}"
  done
  printf '[video]\nmedia_root = "%s"\nmin_free_bytes = 0\nsegment_seconds = 2\n' "$media"
} >"$work/vigil.toml"
"$vigil" users add ops --role admin --role operator --as setup >/dev/null
token=$("$vigil" users token ops --as setup)
"$vigil" --config "$work/vigil.toml" serve --bind 127.0.0.1:0 2>"$work/serve.log" &
server=$!
for _ in $(seq 120); do grep -q "listening on" "$work/serve.log" && break; sleep 0.5; done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
api() { curl -s -o "$work/body" -w '%{http_code}' -H "authorization: Bearer $token" "$@"; }
segments() { sqlite3 "file:$data/vigil.db?mode=ro" 'SELECT count(*) FROM recording_segments' 2>/dev/null || echo "?"; }
say() { printf '%s  %s\n' "$(date +%T)" "$*"; }

sleep 8
say "before: $(df -h --output=used,avail "$data" | tail -1), segments $(segments)"
say "filling the file system"
dd if=/dev/zero of="$data/filler" bs=1M 2>/dev/null || true
say "full: $(df -h --output=used,avail "$data" | tail -1)"
sleep 6
say "GET /healthz -> $(api "$base/healthz")"
say "GET /v1/cameras -> $(api "$base/v1/cameras") $(head -c 200 "$work/body")"
say "GET /v1/sightings (audited) -> $(api "$base/v1/sightings?limit=5") $(head -c 200 "$work/body")"
say "POST /v1/cameras (a write) -> $(api -X POST -H 'content-type: application/json' -d '{"id":"late","url":"head-pose-face-detection-male.mp4","enabled":false}' "$base/v1/cameras") $(head -c 300 "$work/body")"
say "GET /metrics -> $(api "$base/metrics")"
grep -E 'vigil_camera_restarts_total|vigil_storage_full_total|vigil_sightings_(unstored|lost_total|stored_late_total)' "$work/body" | head -10 || true
say "segments while full: $(segments)"
say "errors logged while full:"
grep -aiE 'No space|full|disk|ENOSPC|database or disk' "$work/serve.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | sort | uniq -c | sort -rn | head -8
rm -f "$data/filler"
say "space back: $(df -h --output=used,avail "$data" | tail -1)"
before=$(segments)
sleep 15
say "segments 15 s later: $before -> $(segments)"
say "POST /v1/cameras again -> $(api -X POST -H 'content-type: application/json' -d '{"id":"late","url":"head-pose-face-detection-male.mp4","enabled":false}' "$base/v1/cameras")"
say "GET /v1/sightings again -> $(api "$base/v1/sightings?limit=5")"
say "GET /metrics after -> $(api "$base/metrics")"
grep -E 'vigil_storage_full_total|vigil_sightings_(unstored|lost_total|stored_late_total)' "$work/body" | head -6 || true
kill -TERM "$server"; wait "$server" && say "server exited 0 on SIGTERM" || say "server exit $?"
server=
say "integrity_check: $(sqlite3 "$data/vigil.db" 'PRAGMA integrity_check')"
say "audit verify: $("$vigil" audit verify 2>&1 | tail -1)"
