#!/bin/sh
# Extracts kind's node-image files (images/base/files) from Debian's kind
# source package into $2 and adapts them to this test cluster. Each change
# is checked: a kind release that moved the line fails the build here
# instead of making a node that silently misbehaves.
set -eu
version="$1" out="$2"
cd /tmp
# The mirror may lack the .dsc while it has the upstream tarball, which is
# all that is needed: take what downloads, then check the tarball against
# the checksum in the (signed) Sources index.
apt-get source --download-only -qq "kind=${version}" >/dev/null 2>&1 || true
upstream="${version%-*}"
tarball="kind_${upstream}.orig.tar.gz"
[ -f "$tarball" ] || { echo "kind-files: could not download $tarball" >&2; exit 1; }
want=$(apt-cache showsrc kind | awk -v v="$version" -v f="$tarball" '
  /^Package: /{ours=0} /^Version: /{ours=($2==v)}
  /^Checksums-Sha256:/{s=1; next} /^[^ ]/{s=0}
  ours && s && $3==f {print $1; exit}')
echo "$want  $tarball" | sha256sum -c - >/dev/null || { echo "kind-files: $tarball does not match its Sources checksum" >&2; exit 1; }
tar xzf "$tarball"
mkdir -p "$out"
cp -a "kind-${upstream}/images/base/files/." "$out/"

entrypoint="$out/usr/local/bin/entrypoint"
config="$out/etc/containerd/config.toml"
edit() { # file, sed expression, grep pattern that must match afterwards
  sed -i -e "$2" "$1"
  grep -q -e "$3" "$1" || { echo "kind-files: '$2' did not apply to $1" >&2; exit 1; }
}

# kubelet 1.20 crash-loops with `cgroup-root ["kubelet"] doesn't exist` when
# the /kubelet cgroup is not created in every hierarchy in a stable order:
# on these hosts Docker mounts `cpu` before `cpuacct`, so sort the list.
edit "$entrypoint" "s/| awk '{print \$2}')\$/| awk '{print \$2}' | sort)/" "awk '{print \$2}' | sort)"

# Without --privileged (which these machines cannot grant, see
# test-cluster/docker) Docker mounts the cgroup v1 hierarchies read-only.
# A bind remount makes them writable (a plain remount,rw gives EBUSY).
edit "$entrypoint" 's/^fix_cgroup$/harness_rw_cgroups\nfix_cgroup/' '^harness_rw_cgroups$'
edit "$entrypoint" 's/^fix_cgroup() {$/harness_rw_cgroups() {\n  [ -f \/sys\/fs\/cgroup\/cgroup.controllers ] \&\& return 0\n  mount -o remount,rw \/sys\/fs\/cgroup 2>\/dev\/null || true\n  findmnt -lun -o target -t cgroup | while IFS= read -r m; do\n    mount -o remount,bind,rw "$m" || log_warn "cannot make $m writable"\n  done\n}\n\nfix_cgroup() {/' '^harness_rw_cgroups() {$'

# kind drives kubelets older than 1.24 with the cgroupfs driver; containerd
# must agree.
edit "$config" 's/SystemdCgroup = true/SystemdCgroup = false/' 'SystemdCgroup = false'
! grep -q 'SystemdCgroup = true' "$config"
# The OOM score of containers cannot be lowered here either.
edit "$config" 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' 'restrict_oom_score_adj = true'
echo "kind-files: kind ${upstream} node files in $out"
