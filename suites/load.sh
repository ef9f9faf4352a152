#!/bin/sh
# High load, run serially (alone): 8 writers post 250 events each, single
# and batched, while reading their own writes; nothing acknowledged may be
# missing afterwards. Bounded: 2000 events, one cluster-local endpoint.
#
#   DEMO_CRASH=1  ends with a burst DataStorage is not sized for: 48 batches
#                 of 1000 events (~1.5 MB each) at once, far over its 64Mi
#                 memory limit, so the kernel OOM-kills it. The burst is load,
#                 not a test case; the audit suite, which runs next, meets a
#                 DataStorage that is down (`infrastructure` verdicts).
. "$(dirname "$0")/lib.sh"

writers=8
per=250
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
writer() {
  w=$1
  c="$PREFIX-w$w"
  for n in $(seq 1 $((per / 2))); do post_event "$c" suite.load "$n" >>"$dir/$w.ids" || echo x >>"$dir/$w.err"; done
  body=$(jq -nc --arg c "$c" --argjson k $((per / 2)) '[range(0; $k) | {correlation_id: $c, event_type: "suite.load", payload: {n: .}}]')
  curl -fsS -X POST "$DS/api/v1/audit/events/batch" -H 'content-type: application/json' -d "$body" \
    | jq -r '.event_ids[]' >>"$dir/$w.ids" || echo x >>"$dir/$w.err"
  total=$(query "correlation_id=$c&limit=1" | jq .pagination.total)
  echo "$total" >"$dir/$w.total"
}
start=$(date +%s)
for w in $(seq 1 $writers); do writer "$w" & done
wait
elapsed=$(( $(date +%s) - start ))
echo "posted $((writers * per)) events in ${elapsed}s"

errors=$(cat "$dir"/*.err 2>/dev/null | wc -l)
if [ "$errors" -eq 0 ]; then pass "every post was acknowledged"; else fail "every post was acknowledged" "$errors failed"; fi
bad=""
for w in $(seq 1 $writers); do
  [ "$(cat "$dir/$w.total")" = "$per" ] || bad="$bad w$w=$(cat "$dir/$w.total")"
done
if [ -z "$bad" ]; then pass "each writer reads all $per of its writes"; else fail "each writer reads all $per of its writes" "$bad"; fi
sort "$dir"/*.ids >"$dir/posted"
for w in $(seq 1 $writers); do all_ids "$PREFIX-w$w" 500; done | sort >"$dir/found"
if cmp -s "$dir/posted" "$dir/found"; then pass "all $((writers * per)) events found exactly once"
else fail "all $((writers * per)) events found exactly once" "posted $(wc -l <"$dir/posted"), found $(wc -l <"$dir/found")"; fi

if [ "${DEMO_CRASH:-}" = 1 ]; then
  blob=$(head -c 1400 /dev/zero | tr '\0' x)
  jq -nc --arg c "$PREFIX-burst" --arg blob "$blob" \
    '[range(0; 1000) | {correlation_id: $c, event_type: "suite.burst", payload: {n: ., blob: $blob}}]' >"$dir/burst.json"
  for i in $(seq 1 48); do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "$DS/api/v1/audit/events/batch" \
      -H 'content-type: application/json' --data-binary @"$dir/burst.json" >>"$dir/burst.codes" &
  done
  wait
  echo "burst: $(grep -c '^202$' "$dir/burst.codes") of 48 batches of $(($(wc -c <"$dir/burst.json") / 1024)) KiB acknowledged"
fi
finish
