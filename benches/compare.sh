#!/usr/bin/env bash
# Side by side, on the same generated snapshot: `istio-proxy-reset plan --snapshot`, the floor
# (the same bytes parsed into serde's IgnoredAny) and the kubectl+jq baseline (restart-set.jq).
# Each is measured as a whole process with /usr/bin/time -v (wall time, peak RSS), best of REPS
# runs; the script prints the ratios and checks that the tool and jq name the same workloads.
#
#   benches/compare.sh [PODS...]          # default: 20000
#   REPS=5 SEED=7 benches/compare.sh 1000 20000 50000
#   SHAPE=lean benches/compare.sh 20000   # kube-sim generate --shape (kyma, the default, or lean)
#
# Needs cargo, jq and GNU time. Builds in $CARGO_TARGET_DIR (default target/), writes only to a
# temporary directory that it removes.
set -euo pipefail

cd "$(dirname "$0")/.."
REPS=${REPS:-3}
SEED=${SEED:-7}
SHAPE=${SHAPE:-kyma}
EXPECTED=${EXPECTED:-1.24.1} # kube-sim generate's control-plane version
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(20000)

for tool in jq /usr/bin/time cargo; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 1; }
done

echo "building (release)…" >&2
cargo build --release --quiet --bin istio-proxy-reset -p istio-proxy-reset
cargo build --release --quiet --bin kube-sim -p kube-sim
# The floor lives in the snapshot bench (`--floor FILE`).
FLOOR=$(cargo bench --no-run --quiet --bench snapshot --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "snapshot" and .executable != null) | .executable' |
  tail -n1)
TARGET=${CARGO_TARGET_DIR:-target}
TOOL=$TARGET/release/istio-proxy-reset
SIM=$TARGET/release/kube-sim
[ -x "$FLOOR" ] || { echo "compare.sh: no floor binary" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# measure NAME OUT CMD...: best wall time (s) and peak RSS (KiB) of REPS runs -> "$WALL $RSS"
measure() {
  local out=$1; shift
  local best="" rss=0
  for _ in $(seq "$REPS"); do
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$out" 2>/dev/null
    local wall kib
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt" |
      awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
    if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$wall; fi
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  echo "$best $rss"
}

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1 /proc/loadavg)"
echo "best of $REPS runs; wall time in seconds, peak RSS in MiB"
echo
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' pods "JSON MB" "floor (read + parse)" "plan --snapshot" "plan ÷ floor" "jq baseline" "jq ÷ plan" "same workloads"
echo '|---:|---:|---:|---:|---:|---:|---:|---|'
for pods in "${SIZES[@]}"; do
  file=$WORK/snapshot-$pods.json
  "$SIM" generate --pods "$pods" --seed "$SEED" --shape "$SHAPE" >"$file"
  mb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.0f", b / 1e6 }')

  read -r floor_s floor_k < <(measure "$WORK/floor.out" "$FLOOR" --floor "$file")
  read -r plan_s plan_k < <(measure "$WORK/report.json" env ISTIO_PROXY_RESET_LOG=warn \
    "$TOOL" plan --snapshot "$file" --expected-version "$EXPECTED" --format json)
  read -r jq_s jq_k < <(REPS=1 measure "$WORK/jq.out" jq -r --arg expected "$EXPECTED" -f benches/restart-set.jq "$file")

  jq -r '.workloads[] | select(.action == "rollout-restart" or .action == "evict") | "\(.kind) \(.namespace)/\(.name)"' \
    "$WORK/report.json" | sort >"$WORK/tool.set"
  sort "$WORK/jq.out" >"$WORK/jq.set"
  if cmp -s "$WORK/tool.set" "$WORK/jq.set"; then
    same="yes ($(wc -l <"$WORK/tool.set"))"
  else
    same="NO: $(comm -23 "$WORK/tool.set" "$WORK/jq.set" | wc -l) only in the plan, $(comm -13 "$WORK/tool.set" "$WORK/jq.set" | wc -l) only in jq"
  fi
  awk -v p="$pods" -v mb="$mb" -v fs="$floor_s" -v fk="$floor_k" -v ps="$plan_s" -v pk="$plan_k" \
    -v js="$jq_s" -v jk="$jq_k" -v same="$same" 'BEGIN {
      printf "| %d | %d | %.2f s, %.0f MiB | %.2f s, %.1f MiB | %.2fx | %.2f s, %.0f MiB | %.1fx | %s |\n",
        p, mb, fs, fk / 1024, ps, pk / 1024, ps / fs, js, jk / 1024, js / ps, same }'
  rm -f "$file"
done
