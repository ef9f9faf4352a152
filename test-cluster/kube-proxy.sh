#!/bin/sh
# kube-proxy as kubeadm starts it (/usr/local/bin/kube-proxy ...), after
# pointing iptables at the backend the node uses: the kubelet has already
# written its chains with the node's iptables, so the backend holding more
# rules is the node's (the rule kind's entrypoint and upstream's
# iptables-wrappers use).
set -eu
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-' || true)
nft=$( (iptables-nft-save; ip6tables-nft-save) 2>/dev/null | grep -c '^-' || true)
if [ "$legacy" -ge "$nft" ]; then mode=legacy; else mode=nft; fi
echo "kube-proxy.sh: iptables backend $mode ($legacy legacy rules, $nft nft rules)" >&2
update-alternatives --set iptables "/usr/sbin/iptables-$mode" >/dev/null
update-alternatives --set ip6tables "/usr/sbin/ip6tables-$mode" >/dev/null
exec /usr/local/lib/kube-proxy "$@"
