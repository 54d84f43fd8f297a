#!/bin/bash
#
# Second stage of one systemd test node (test/support/systemdNode.ts), run by
# launcher.sh under `unshare --mount --net --propagation private`: everything
# it mounts exists only in this new mount namespace, and the network namespace
# has nothing but lo. It:
# - moves itself into the node's cgroups (made by launcher.sh);
# - brings lo up and puts the local DNS address on it;
# - mounts a private tmpfs on /run (nspawn's lock and propagation dirs stay
#   out of the host's /run) and the node's root: an overlay whose lower layer
#   is the cached root filesystem and whose upper layer is a tmpfs, so that a
#   node never changes the cache;
# - writes the node's files (DIR/files.list) through a chroot, so that paths
#   resolve inside the node, and enables the units of DIR/enable.list;
# - becomes systemd-nspawn, booting the root's systemd in this network
#   namespace.
#
# Usage: node-ns.sh DIR ROOTFS NAME LOCAL_DNS_IP CGROUP_DIR...
# files.list lines: "MODE OWNER INDEX PATH" (MODE octal or "-", OWNER
# user:group or "-"), the content in DIR/files/INDEX.

set -euo pipefail

readonly DIR="$1" ROOTFS="$2" NAME="$3" LOCAL_DNS_IP="$4"
shift 4
readonly ROOT="${DIR}/root"

#######################################
# Writes one file into the node's root, creating its parents.
# Arguments:
#   Mode or "-", owner or "-", content file (host path), path in the node.
#######################################
write_node_file() {
  local mode="$1" owner="$2" content="$3" path="$4"
  # shellcheck disable=SC2016 # expanded by the node's bash.
  chroot "${ROOT}" /bin/bash -c '
    set -e
    umask 022
    mkdir -p -- "$(dirname -- "$3")"
    cat >"$3"
    if [[ $1 != - ]]; then chmod "$1" -- "$3"; fi
    if [[ $2 != - ]]; then chown "$2" -- "$3"; fi
  ' write-file "${mode}" "${owner}" "${path}" <"${content}"
}

main() {
  local cgroup
  for cgroup in "$@"; do
    echo "$$" >"${cgroup}/cgroup.procs"
  done

  ip link set lo up
  if [[ -n ${LOCAL_DNS_IP} ]]; then
    if [[ ${LOCAL_DNS_IP} == *:* ]]; then
      ip addr add "${LOCAL_DNS_IP}/128" dev lo
    else
      ip addr add "${LOCAL_DNS_IP}/32" dev lo
    fi
  fi

  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
  mount -t tmpfs -o mode=0700 tmpfs "${DIR}/layers"
  mkdir -p "${DIR}/layers/upper" "${DIR}/layers/work"
  chmod 0755 "${DIR}/layers/upper"
  mount -t overlay overlay \
    -o "lowerdir=${ROOTFS},upperdir=${DIR}/layers/upper,workdir=${DIR}/layers/work" "${ROOT}"

  local mode owner index path
  while read -r mode owner index path; do
    write_node_file "${mode}" "${owner}" "${DIR}/files/${index}" "${path}"
  done <"${DIR}/files.list"
  local units=()
  mapfile -t units <"${DIR}/enable.list"
  if ((${#units[@]} > 0)); then
    chroot "${ROOT}" /usr/bin/systemctl --root=/ --quiet enable -- "${units[@]}"
  fi

  exec systemd-nspawn --boot --register=no --keep-unit \
    --directory="${ROOT}" --machine="${NAME}" \
    --link-journal=no --resolv-conf=off --timezone=off --console=read-only \
    --capability=CAP_NET_ADMIN
}

# One compound command: bash has read all of it before running, so an edit of this file
# while it runs cannot change what it does.
{
  main "$@"
  exit
}
