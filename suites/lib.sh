# Shared by the demo suites: the harness's environment contract, checks and
# a tiny JUnit writer. POSIX sh + curl + jq.
set -eu

: "${HARNESS_NAMESPACE:?run me through harness test (HARNESS_NAMESPACE is not set)}"
: "${HARNESS_RUN_ID:?run me through harness test (HARNESS_RUN_ID is not set)}"
: "${HARNESS_ARTIFACTS:=.}"
DS="${HARNESS_ENDPOINT_DATASTORAGE:-http://localhost:28090}"
SUITE="${SUITE:-$(basename "$0" .sh)}"
# Every event of this run carries a correlation id no other run shares.
PREFIX="$SUITE-$HARNESS_RUN_ID-$HARNESS_NAMESPACE"
passed=0
failed=0
cases=""

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$SUITE: $tool is required" >&2; exit 2; }
done

# pass NAME / fail NAME MESSAGE: record a test case.
pass() { passed=$((passed + 1)); cases="$cases<testcase name=\"$1\"/>"; echo "ok   $1"; }
fail() {
  failed=$((failed + 1))
  msg=$(printf '%s' "$2" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/"/\&quot;/g')
  cases="$cases<testcase name=\"$1\"><failure message=\"$msg\"/></testcase>"
  echo "FAIL $1: $2" >&2
}

# post_event CORRELATION TYPE N -> prints the event id
post_event() {
  curl -fsS -X POST "$DS/api/v1/audit/events" -H 'content-type: application/json' \
    -d "{\"correlation_id\":\"$1\",\"event_type\":\"$2\",\"payload\":{\"n\":$3}}" | jq -r .event_id
}

# query QUERY-STRING -> prints the JSON page
query() { curl -fsS "$DS/api/v1/audit/events?$1"; }

# all_ids CORRELATION PAGE-SIZE -> every event id over all pages, one a line
all_ids() {
  offset=0
  while :; do
    page=$(query "correlation_id=$1&limit=$2&offset=$offset")
    printf '%s' "$page" | jq -r '.data[].event_id'
    [ "$(printf '%s' "$page" | jq -r .pagination.has_more)" = true ] || break
    offset=$((offset + $2))
  done
}

finish() {
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="%s" tests="%d" failures="%d">%s</testsuite>\n' \
    "$SUITE" $((passed + failed)) "$failed" "$cases" >"$HARNESS_ARTIFACTS/junit-$SUITE.xml"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
