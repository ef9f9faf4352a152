# Shared by the demo suites: the harness's environment contract, checks and
# a tiny JUnit writer. POSIX sh + curl + jq.
set -eu

: "${HARNESS_NAMESPACE:?run me through harness test (HARNESS_NAMESPACE is not set)}"
: "${HARNESS_RUN_ID:?run me through harness test (HARNESS_RUN_ID is not set)}"
: "${HARNESS_ARTIFACTS:=.}"
DS="${HARNESS_ENDPOINT_DATASTORAGE:-http://localhost:28090}"
echo "${SUITE:-$(basename "$0" .sh)}: DataStorage at $DS"
SUITE="${SUITE:-$(basename "$0" .sh)}"
# Every event of this run carries a correlation id no other run shares.
PREFIX="$SUITE-$HARNESS_RUN_ID-$HARNESS_NAMESPACE"
passed=0
failed=0
cases=""

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$SUITE: $tool is required" >&2; exit 2; }
done

# wanted NAME: whether to run the test case NAME. A retry runs only the
# cases that failed before, which the harness lists in HARNESS_FAILED_CASES
# (one name a line); the first attempt runs them all.
wanted() {
  [ -z "${HARNESS_FAILED_CASES:-}" ] && return 0
  printf '%s\n' "$HARNESS_FAILED_CASES" | grep -Fxq "$1"
}

# begin: a test case starts (its JUnit timestamp and time are measured from here).
now() { date -u +%s.%N; }
begin() { case_start=$(now); case_stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ); }
begin
elapsed() { awk -v a="$case_start" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
attrs() { printf 'name="%s" timestamp="%s" time="%s"' "$1" "$case_stamp" "$(elapsed)"; }

# pass NAME / fail NAME MESSAGE: record a test case (begun with `begin`).
pass() { passed=$((passed + 1)); cases="$cases<testcase $(attrs "$1")/>"; echo "ok   $1"; begin; }
fail() {
  failed=$((failed + 1))
  msg=$(printf '%s' "$2" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/"/\&quot;/g')
  cases="$cases<testcase $(attrs "$1")><failure message=\"$msg\" type=\"assertion\"/></testcase>"
  echo "FAIL $1: $2" >&2
  begin
}

# post_event CORRELATION TYPE N -> prints the event id
post_event() {
  curl -fsS -X POST "$DS/api/v1/audit/events" -H 'content-type: application/json' \
    -d "{\"correlation_id\":\"$1\",\"event_type\":\"$2\",\"payload\":{\"n\":$3}}" | jq -r .event_id
}

# query QUERY-STRING -> prints the JSON page
query() { curl -fsS "$DS/api/v1/audit/events?$1"; }

# event_types -> the event types DataStorage has stored, one a line
event_types() { curl -fsS "$DS/api/v1/audit/event-types" | jq -r '.event_types[]'; }

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
