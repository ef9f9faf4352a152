#!/bin/sh
# The controller's audit trail for one object: create a RemediationRequest
# in this suite's namespace, wait for it to complete, then find exactly its
# three transitions in DataStorage, in order, under its uid.
. "$(dirname "$0")/lib.sh"
command -v kubectl >/dev/null || { echo "$SUITE: kubectl is required" >&2; exit 2; }
: "${KUBECONFIG:?run me through harness test (KUBECONFIG is not set)}"

name="trail-$HARNESS_PROCESS"
kubectl -n "$HARNESS_NAMESPACE" apply -f - <<YAML
apiVersion: demo.harness.dev/v1alpha1
kind: RemediationRequest
metadata:
  name: $name
spec:
  target: deployment/api
  action: restart
YAML
if kubectl -n "$HARNESS_NAMESPACE" wait "remediationrequest/$name" \
     --for=jsonpath='{.status.phase}'=Completed --timeout=120s; then
  pass "the object reaches Completed"
else
  fail "the object reaches Completed" "phase: $(kubectl -n "$HARNESS_NAMESPACE" get "remediationrequest/$name" -o jsonpath='{.status.phase}')"
fi
uid=$(kubectl -n "$HARNESS_NAMESPACE" get "remediationrequest/$name" -o jsonpath='{.metadata.uid}')
trail=$(query "correlation_id=$uid&limit=100" | jq -r '[.data[].event_type] | join(",")')
want="remediation.pending,remediation.processing,remediation.completed"
if [ "$trail" = "$want" ]; then pass "one audit event per transition, in order"
else fail "one audit event per transition, in order" "got [$trail], want [$want]"; fi
kubectl -n "$HARNESS_NAMESPACE" delete "remediationrequest/$name" --wait=false >/dev/null

# The controller's validating webhook (over TLS, its CA patched in by the
# controller) refuses an action it does not know.
if refused=$(kubectl -n "$HARNESS_NAMESPACE" apply -f - 2>&1 <<YAML
apiVersion: demo.harness.dev/v1alpha1
kind: RemediationRequest
metadata:
  name: refused-$HARNESS_PROCESS
spec:
  target: deployment/api
  action: explode
YAML
); then
  fail "the webhook refuses an unknown action" "it was accepted: $refused"
elif printf '%s' "$refused" | grep -q 'spec.action `explode` is not one of'; then
  pass "the webhook refuses an unknown action"
else
  fail "the webhook refuses an unknown action" "$refused"
fi
finish
