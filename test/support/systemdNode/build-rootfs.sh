#!/bin/bash
#
# Builds the Debian root filesystem of the systemd test nodes
# (test/support/systemdNode.ts) once, into a cache outside the repository:
#
#   ${NODELOCALDNS_ROOTFS_CACHE:-/var/cache/nodelocaldns-rootfs}/<key>/root
#
# where <key> is derived from the suite, the package list and a hash of every
# file baked into the root (this script included), so that a change to any of
# them builds a new root. Nodes never write to it: each one boots a
# copy-on-write overlay of it. The slow part, debootstrap, is cached on its own
# (base-<suite>-<hash of suite and packages>), so a change to a baked file only
# copies and customizes the base again. Every build goes to a temp dir that is
# renamed into place when complete; a lock serializes concurrent callers. A
# build removes the entries of other keys that nobody used in the last hour.
#
# Usage: build-rootfs.sh
# Prints progress on stderr and the root's path on stdout.
# Environment: NODELOCALDNS_ROOTFS_CACHE (cache dir), NODELOCALDNS_DEBIAN_MIRROR
# (default http://deb.debian.org/debian). Needs root, debootstrap, util-linux.

set -euo pipefail

readonly SUITE=bookworm
readonly MIRROR="${NODELOCALDNS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly CACHE="${NODELOCALDNS_ROOTFS_CACHE:-/var/cache/nodelocaldns-rootfs}"
readonly LOCK_TIMEOUT_S=1800
# What a node has: systemd as init, sshd, sudo, the tools the node program may
# use (bash, coreutils, util-linux, diffutils, iproute2, systemd's), and
# python3 with YAML for the stand-in kubelet and the test DNS server only.
readonly PACKAGES=(
  systemd systemd-sysv dbus openssh-server sudo iproute2 iptables util-linux
  procps diffutils coreutils python3 python3-yaml
)
# Files of this directory baked into the root; their contents are in the key.
readonly BAKED=(build-rootfs.sh kubelet-standin.py kubelet.service dns-server.py)
# Units of a Debian install that a test node has no use for (timers that would
# touch the network or the disk, consoles nobody logs in on).
readonly MASKED=(
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
  e2scrub_reap.service fstrim.timer console-getty.service getty@tty1.service
)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE

#######################################
# Prints a progress line on stderr.
# Arguments:
#   The message.
#######################################
progress() {
  echo "build-rootfs: $*" >&2
}

#######################################
# Prints a hash of the given text and files (first 16 hex digits).
# Arguments:
#   Text, then file paths.
#######################################
content_hash() {
  local text="$1"
  shift
  {
    printf '%s\n' "${text}"
    local file
    for file in "$@"; do
      printf '%s %s\n' "$(basename "${file}")" "$(sha256sum <"${file}" | cut -c1-64)"
    done
  } | sha256sum | cut -c1-16
}

#######################################
# Runs debootstrap into a temp dir and renames it to the base root. Runs in a
# private mount namespace, so no mount debootstrap makes can outlive it.
# Arguments:
#   Path of the base root to create.
#######################################
build_base() {
  local base="$1"
  local tmp
  tmp="$(mktemp -d "${CACHE}/.tmp-base.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the path is fixed.
  trap "rm -rf -- '${tmp}'" EXIT
  mkdir -p "${CACHE}/debs"
  local includes
  includes="$(IFS=,; echo "${PACKAGES[*]}")"
  progress "debootstrap ${SUITE} from ${MIRROR} (a few minutes)"
  local log="${tmp}.log"
  if ! unshare --mount --propagation private -- \
    debootstrap --variant=minbase --include="${includes}" \
    --cache-dir="${CACHE}/debs" "${SUITE}" "${tmp}/root" "${MIRROR}" >"${log}" 2>&1; then
    tail -n 30 "${log}" >&2
    rm -f -- "${log}"
    progress "debootstrap failed"
    return 1
  fi
  rm -f -- "${log}"
  mv -T -- "${tmp}/root" "${base}"
  rm -rf -- "${tmp}"
  trap - EXIT
}

#######################################
# Bakes the test node's files and settings into a copy of the base root.
# Arguments:
#   Root to customize.
#######################################
customize() {
  local root="$1"
  local units="${root}/usr/lib/systemd/system"
  local etc_units="${root}/etc/systemd/system"

  progress "baking the stand-in kubelet, kubelet.service, sshd and sudo settings"
  install -m 0755 "${HERE}/kubelet-standin.py" "${root}/usr/bin/kubelet"
  install -m 0644 "${HERE}/kubelet.service" "${units}/kubelet.service"
  install -d -m 0755 "${root}/usr/local/lib/nodelocaldns-test"
  install -m 0755 "${HERE}/dns-server.py" \
    "${root}/usr/local/lib/nodelocaldns-test/dns-server.py"
  install -d -m 0755 "${root}/etc/kubelet-standin" "${root}/var/lib/kubelet-standin"

  # root: key login only, through an authorized_keys slot the harness fills.
  install -d -m 0700 "${root}/root/.ssh"
  install -m 0600 /dev/null "${root}/root/.ssh/authorized_keys"

  # ops: an unprivileged login with passwordless sudo; no password at all.
  chroot "${root}" useradd --create-home --shell /bin/bash ops
  chroot "${root}" usermod --password '*' ops
  install -d -m 0700 "${root}/home/ops/.ssh"
  install -m 0600 /dev/null "${root}/home/ops/.ssh/authorized_keys"
  chroot "${root}" chown -R ops:ops /home/ops/.ssh
  printf 'ops ALL=(ALL:ALL) NOPASSWD: ALL\n' >"${root}/etc/sudoers.d/ops"
  chmod 0440 "${root}/etc/sudoers.d/ops"
  chroot "${root}" visudo -c -q

  # sshd: Debian's config, plus key-only root login on a per-node host key
  # (the harness writes /etc/ssh/ssh_host_ed25519_key before boot).
  cat >"${root}/etc/ssh/sshd_config.d/10-test-node.conf" <<'EOF'
# Test node (test/support/systemdNode.ts): keys only, root included.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
EOF
  rm -f -- "${root}"/etc/ssh/ssh_host_*

  # Per-node identity: a fresh machine id at every boot, hostname and hosts
  # written by the harness; no resolver (a node has only lo).
  : >"${root}/etc/machine-id"
  rm -f -- "${root}/var/lib/dbus/machine-id"
  echo node >"${root}/etc/hostname"
  printf '# test node: no resolver, the node has only lo\n' >"${root}/etc/resolv.conf"

  local unit
  for unit in "${MASKED[@]}"; do
    rm -f -- "${etc_units}"/*.wants/"${unit}"
    ln -sfn /dev/null "${etc_units}/${unit}"
  done

  # kubelet.service is installed but not enabled: each test picks its layout.
  rm -f -- "${etc_units}/multi-user.target.wants/kubelet.service"

  rm -rf -- "${root}"/var/cache/apt/*.bin "${root}"/var/lib/apt/lists/* \
    "${root}"/var/log/*.log "${root}"/var/cache/debconf/*-old
}

#######################################
# Builds the node root for <key> from the base root, then renames it into place.
# Arguments:
#   Base root, entry dir to create.
#######################################
build_entry() {
  local base="$1"
  local entry="$2"
  local tmp
  tmp="$(mktemp -d "${CACHE}/.tmp-entry.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the path is fixed.
  trap "rm -rf -- '${tmp}'" EXIT
  progress "copying the base root"
  cp -a -- "${base}" "${tmp}/root"
  customize "${tmp}/root"
  {
    echo "suite=${SUITE}"
    echo "packages=${PACKAGES[*]}"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "size=$(du -sh -- "${tmp}/root" | cut -f1)"
  } >"${tmp}/info"
  chmod 0755 "${tmp}"
  mv -T -- "${tmp}" "${entry}"
  trap - EXIT
}

#######################################
# Removes the node roots of other keys (an older stand-in kubelet, say) that no
# caller has asked for in an hour and that no node has mounted. Called with the
# lock held, after a build.
# Arguments:
#   The current entry, kept.
#######################################
prune_stale() {
  local current="$1" stale
  for stale in "${CACHE}/${SUITE}"-*; do
    [[ -d ${stale} && ${stale} != "${current}" ]] || continue
    if [[ -n $(find "${stale}" -maxdepth 1 -name last-used -mmin -60) ]] ||
      grep -qsF "lowerdir=${stale}/root" /proc/[0-9]*/mountinfo; then
      progress "keeping ${stale}: used in the last hour, or mounted"
      continue
    fi
    progress "removing the stale ${stale}"
    rm -rf -- "${stale}"
  done
}

main() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-rootfs: needs root" >&2
    return 1
  fi
  local files=() name
  for name in "${BAKED[@]}"; do
    files+=("${HERE}/${name}")
  done
  local package_hash key
  package_hash="$(content_hash "suite=${SUITE} packages=${PACKAGES[*]}")"
  key="${SUITE}-$(content_hash "suite=${SUITE} packages=${PACKAGES[*]}" "${files[@]}")"
  local base="${CACHE}/base-${SUITE}-${package_hash}"
  local entry="${CACHE}/${key}"

  if [[ -d ${entry}/root ]]; then
    touch -- "${entry}/last-used"
    echo "${entry}/root"
    return 0
  fi
  mkdir -p -- "${CACHE}"
  exec 9>"${CACHE}/.lock"
  if ! flock -n 9; then
    progress "another build holds ${CACHE}/.lock, waiting"
    flock -w "${LOCK_TIMEOUT_S}" 9
  fi
  if [[ ! -d ${entry}/root ]]; then
    # Left by a build that was killed: nobody else builds while we hold the lock.
    rm -rf -- "${CACHE}"/.tmp-*
    local started=${SECONDS}
    if [[ ! -d ${base} ]]; then
      build_base "${base}"
    fi
    build_entry "${base}" "${entry}"
    echo "seconds=$((SECONDS - started))" >>"${entry}/info"
    progress "built ${entry} in $((SECONDS - started)) s ($(grep '^size=' "${entry}/info"))"
    prune_stale "${entry}"
  fi
  exec 9>&-
  touch -- "${entry}/last-used"
  echo "${entry}/root"
}

# One compound command: bash has read all of it before running, so an edit of this file
# while it runs cannot change what it does.
{
  main "$@"
  exit
}
