#!/usr/bin/env bash
# Installs what the test nodes need when it is missing and this machine can: root with apt-get.
# The systemd test nodes need OpenSSH (server and client), iproute2, util-linux (nsenter),
# systemd-nspawn, debootstrap (their root filesystem) and socat (the ssh forward); the linter of
# the node programs is shellcheck; the cleanup's test needs iptables (legacy and nft). Otherwise
# it says what is missing; those tests then skip with that reason (and fail under CI=true, where
# they must run).
set -euo pipefail
missing=()
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v socat >/dev/null || missing+=(socat)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v iptables-legacy >/dev/null && command -v iptables-nft >/dev/null || missing+=(iptables)
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing for the test nodes: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "test nodes need: ${missing[*]} (install them as root; the node tests will skip until then)" >&2
fi
