#!/bin/sh
# The audit write/query contract of DataStorage: read-your-writes across
# pagination (75 events posted one by one, then queried at once), the batch
# endpoint and a bad page size. Serial, after the load suite: the contract
# must hold after load, as the model project's audit specs checked it.
#
#   DEMO_WRONG=1  adds a case whose expectation is wrong on purpose (a batch
#                 of 150 "accepts 151"): it fails on every attempt, a `real`
#                 verdict.
#
# A retry runs only the cases that failed (HARNESS_FAILED_CASES).
. "$(dirname "$0")/lib.sh"

posted=$(mktemp); found=$(mktemp)
trap 'rm -f "$posted" "$found"' EXIT
c="$PREFIX-75"
post75() {
  [ -s "$posted" ] && return
  for n in $(seq 1 75); do post_event "$c" suite.audit "$n" >>"$posted"; done
}

if wanted "75 posted, 75 counted"; then
  begin; post75
  total=$(query "correlation_id=$c&limit=1" | jq .pagination.total)
  if [ "$total" = 75 ]; then pass "75 posted, 75 counted"; else fail "75 posted, 75 counted" "total is ${total:-unknown: no answer}"; fi
fi

if wanted "pagination returns every event exactly once, in order"; then
  begin; post75
  all_ids "$c" 20 >"$found"
  if cmp -s "$posted" "$found"; then
    pass "pagination returns every event exactly once, in order"
  else
    fail "pagination returns every event exactly once, in order" \
      "posted $(grep -c . "$posted"), found $(grep -c . "$found"), $(sort "$found" | uniq -d | wc -l) duplicated"
  fi
fi

b="$PREFIX-batch"
batch() {
  body=$(jq -nc --arg c "$b" '[range(0; 150) | {correlation_id: $c, event_type: "suite.batch", payload: {n: .}}]')
  curl -fsS -X POST "$DS/api/v1/audit/events/batch" -H 'content-type: application/json' -d "$body" | jq .accepted
}
if wanted "a batch of 150 is stored whole"; then
  begin
  accepted=$(batch)
  total=$(query "correlation_id=$b&event_type=suite.batch&limit=1" | jq .pagination.total)
  if [ "$accepted" = 150 ] && [ "$total" = 150 ]; then pass "a batch of 150 is stored whole"
  else fail "a batch of 150 is stored whole" "accepted ${accepted:-none}, found ${total:-none}"; fi
fi

if [ "${DEMO_WRONG:-}" = 1 ] && wanted "a batch of 150 accepts 151 (wrong on purpose)"; then
  begin
  b="$PREFIX-wrong"
  accepted=$(batch)
  if [ "$accepted" = 151 ]; then pass "a batch of 150 accepts 151 (wrong on purpose)"
  else fail "a batch of 150 accepts 151 (wrong on purpose)" "accepted ${accepted:-none}, expected 151"; fi
fi

if wanted "a bad page size is refused"; then
  begin
  status=$(curl -s -o /dev/null -w '%{http_code}' "$DS/api/v1/audit/events?limit=0")
  if [ "$status" = 400 ]; then pass "a bad page size is refused"; else fail "a bad page size is refused" "status $status"; fi
fi
finish
