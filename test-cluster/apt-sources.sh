#!/bin/sh
# Points apt at bookworm (binaries and sources) and trixie (sources and, only
# when asked for with -t trixie, binaries), then updates the lists.
set -eu
mirror="$1"
rm -f /etc/apt/sources.list
cat >/etc/apt/sources.list.d/debian.sources <<SRC
Types: deb deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat >/etc/apt/preferences.d/trixie <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
printf 'APT::Install-Recommends "false";\nAcquire::Retries "3";\n' >/etc/apt/apt.conf.d/90harness
apt-get update -qq
