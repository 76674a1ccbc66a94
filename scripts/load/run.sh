#!/usr/bin/env bash
# Load on a real `vigil serve` (issue 13, "Load"), with locust (scripts/load/requirements.txt):
#   1. identify + retrospective search, 32 concurrent clients, no think time, for $DURATION;
#   2. the same with 8 more clients flooding /v1/login with wrong passwords.
# Prints throughput, p50/p99, errors and refusals (429/503) per route, and the server's peak
# resident set (VmHWM). Run it when nothing else builds (the figures are CPU-bound):
#   scripts/load/run.sh            # DURATION=60s GALLERY=500 by default
# Needs target/release/vigil (cargo build --release -p vigil) and its models installed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
shared=$(cd "$root/../shared" && pwd)
vigil="$root/target/release/vigil"
locust="$root/.venv/bin/locust"
DURATION=${DURATION:-60s}
GALLERY=${GALLERY:-500}
CLIENTS=${CLIENTS:-32}
FLOODERS=${FLOODERS:-8}

if pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; then
  echo "a cargo build is running: the figures would measure it too; wait for it (pgrep -a rustc)" >&2
  [ "${FORCE:-}" = 1 ] || exit 1
fi
[ -x "$vigil" ] || { echo "build it first: cargo build --release -p vigil" >&2; exit 1; }
[ -x "$locust" ] || "$root/.venv/bin/pip" install -q -r "$root/scripts/load/requirements.txt"
eval "$("$root/scripts/dev" env)"

work=$(mktemp -d /tmp/vigil-load.XXXXXX)
results=${RESULTS:-$work/results}
mkdir -p "$results"
cat >"$work/vigil.toml" <<TOML
data_dir = "$work/data"
models_dir = "$root/models"
TOML
export VIGIL_CONFIG="$work/vigil.toml"
run() { "$vigil" "$@"; }

# An investigator (identify, enrol, search), a case they own, and a user whose password the
# flood guesses.
run users add loader --role investigator --as load-setup >/dev/null
token=$(run users token loader --as load-setup)
printf 'correct horse battery staple\n' |
  run users add flood-target --role reviewer --password-stdin --as load-setup >/dev/null
run cases open LOAD-1 --purpose "load test" --legal-basis "test" --expires-days 1 --as loader >/dev/null

server_log="$work/serve.log"
"$vigil" serve --bind 127.0.0.1:0 2>"$server_log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 600); do
  address=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$server_log" | head -1)
  [ -n "$address" ] && break
  sleep 0.2
done
[ -n "${address:-}" ] || { cat "$server_log" >&2; exit 1; }
base="http://$address"

# The gallery: the first photo of $GALLERY LFW people with at least two photos, enrolled over
# the API; the probes are their second photos (and a third of people never enrolled).
"$root/.venv/bin/python" - "$base" "$token" "$GALLERY" "$shared/data/lfw/lfw-deepfunneled" "$work/probes.txt" <<'PY'
import os, sys, requests
base, token, count, lfw, probes_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
headers = {"Authorization": f"Bearer {token}", "X-Vigil-Case": "LOAD-1", "X-Vigil-Reason": "load test gallery"}
people = sorted(p for p in os.listdir(lfw) if len(os.listdir(os.path.join(lfw, p))) >= 2)
enrolled, probes = 0, []
for person in people:
    if enrolled >= count:
        break
    photos = sorted(os.listdir(os.path.join(lfw, person)))
    with open(os.path.join(lfw, person, photos[0]), "rb") as f:
        answer = requests.post(f"{base}/v1/subjects", headers=headers,
                               data={"name": person}, files={"image": (photos[0], f.read(), "image/jpeg")})
    if answer.status_code == 201:
        enrolled += 1
        probes.append(os.path.join(lfw, person, photos[1]))
strangers = [p for p in sorted(os.listdir(lfw)) if p not in people][: max(1, count // 2)]
probes += [os.path.join(lfw, p, sorted(os.listdir(os.path.join(lfw, p)))[0]) for p in strangers]
# A search needs one usable face: photos where the face is turned away, or several people
# stand side by side, are answered 422 by design; they are left out so that every answer
# other than 200 under load means something went wrong.
usable = []
for path in probes:
    with open(path, "rb") as f:
        answer = requests.post(f"{base}/v1/search", headers=headers,
                               files={"image": (os.path.basename(path), f.read(), "image/jpeg")})
    if answer.status_code == 200:
        usable.append(path)
open(probes_path, "w").write("\n".join(usable) + "\n")
print(f"enrolled {enrolled} subjects; {len(usable)} of {len(probes)} probe photos have one usable face",
      file=sys.stderr)
PY

export VIGIL_LOAD_TOKEN=$token VIGIL_LOAD_CASE=LOAD-1 VIGIL_LOAD_PHOTOS="$work/probes.txt" VIGIL_LOAD_LOGIN=flood-target
export VIGIL_LOAD_INVESTIGATORS=$CLIENTS VIGIL_LOAD_FLOODERS=$FLOODERS

rss_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$server/status"; }
summary() {
  "$root/.venv/bin/python" - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "_stats.csv")))
print(f"{'route':40} {'requests':>9} {'failures':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
for row in rows:
    print(f"{row['Name']:40} {row['Request Count']:>9} {row['Failure Count']:>8} "
          f"{float(row['Requests/s']):7.1f} {row['50%']:>7} {row['99%']:>7} {float(row['Max Response Time']):7.0f}")
PY
}

# Whether a compiler ran at any moment of the measurement (other work on the machine skews it).
( while kill -0 $server 2>/dev/null; do pgrep -x rustc >/dev/null && date +%T >>"$results/rustc_seen"; sleep 1; done ) &
echo "== identify + search, $CLIENTS clients, $DURATION (server pid $server, RSS $(rss_kib VmRSS) KiB before)"
"$locust" -f "$root/scripts/load/locustfile.py" --headless --host "$base" -u "$CLIENTS" -r "$CLIENTS" \
  -t "$DURATION" --only-summary --csv "$results/identify_search" Investigator >"$results/identify_search.log" 2>&1 || true
summary "$results/identify_search"
echo "server peak RSS (VmHWM) $(rss_kib VmHWM) KiB"

total=$((CLIENTS + FLOODERS))
echo "== the same with $FLOODERS clients flooding /v1/login with wrong passwords, $DURATION"
"$locust" -f "$root/scripts/load/locustfile.py" --headless --host "$base" -u "$total" -r "$total" \
  -t "$DURATION" --only-summary --csv "$results/with_login_flood" Investigator LoginFlood >"$results/with_login_flood.log" 2>&1 || true
summary "$results/with_login_flood"
echo "server peak RSS (VmHWM) $(rss_kib VmHWM) KiB; results in $results"
if [ -s "$results/rustc_seen" ]; then
  echo "WARNING: rustc ran during the measurement ($(wc -l <"$results/rustc_seen") s sampled): the figures are skewed"
else
  echo "no rustc ran during the measurement"
fi
