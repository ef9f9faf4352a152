# The last step of the node image (scripts/test-cluster): the control-plane
# and add-on images go into the node's containerd store at build time,
# because kind 0.27 does not import /kind/images/*.tar when a node starts.
# --no-unpack, as kind does: the CRI unpacks an image when it first runs it.
ARG NODE_BASE
FROM ${NODE_BASE} AS import
COPY images.tar /images.tar
RUN set -e; mkdir -p /run/containerd; \
    (containerd >/tmp/containerd.log 2>&1 &); \
    for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done; \
    ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
        --all-platforms --no-unpack --digests /images.tar; \
    ctr --namespace=k8s.io images list -q | sort; \
    pkill containerd; while pgrep containerd >/dev/null; do sleep 0.1; done
FROM ${NODE_BASE}
COPY --from=import /var/lib/containerd /var/lib/containerd
