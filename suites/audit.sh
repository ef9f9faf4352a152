#!/bin/sh
# The audit write/query contract of DataStorage: read-your-writes across
# pagination (75 events posted one by one, then queried at once) and the
# batch endpoint.
. "$(dirname "$0")/lib.sh"

c="$PREFIX-75"
posted=$(mktemp); found=$(mktemp)
trap 'rm -f "$posted" "$found"' EXIT
for n in $(seq 1 75); do post_event "$c" suite.audit "$n" >>"$posted"; done
total=$(query "correlation_id=$c&limit=1" | jq .pagination.total)
if [ "$total" = 75 ]; then pass "75 posted, 75 counted"; else fail "75 posted, 75 counted" "total is $total"; fi
all_ids "$c" 20 >"$found"
if cmp -s "$posted" "$found"; then
  pass "pagination returns every event exactly once, in order"
else
  fail "pagination returns every event exactly once, in order" \
    "posted $(wc -l <"$posted"), found $(wc -l <"$found"), $(sort "$found" | uniq -d | wc -l) duplicated"
fi

b="$PREFIX-batch"
body=$(jq -nc --arg c "$b" '[range(0; 150) | {correlation_id: $c, event_type: "suite.batch", payload: {n: .}}]')
accepted=$(curl -fsS -X POST "$DS/api/v1/audit/events/batch" -H 'content-type: application/json' -d "$body" | jq .accepted)
total=$(query "correlation_id=$b&event_type=suite.batch&limit=1" | jq .pagination.total)
if [ "$accepted" = 150 ] && [ "$total" = 150 ]; then pass "a batch of 150 is stored whole"
else fail "a batch of 150 is stored whole" "accepted $accepted, found $total"; fi

status=$(curl -s -o /dev/null -w '%{http_code}' "$DS/api/v1/audit/events?limit=0")
if [ "$status" = 400 ]; then pass "a bad page size is refused"; else fail "a bad page size is refused" "status $status"; fi
finish
