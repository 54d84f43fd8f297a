// The node's pid 1 (init.sh): mounts the node's private view of the machine, its lo address and
// hostname, then starts the cache stand-in and sshd. Written into the node's host dir by
// NamespaceNode.start() and run by unshare.

import { NODE_STATE, SSH_ADDRESS, SSH_PORT, SSHD } from "./constants";

// pid 1 of the node. Arguments: host dir, node binary, local DNS IP (or ""), hostname, cache (0/1),
// ssh (0/1). Protocol on stdout: "mounted" (then waits for a "go" line on stdin), "started".
export const INIT_SCRIPT = `# pid 1 of one test node (test/support/testNode.ts). Runs in fresh mount,
# network, pid, UTS and IPC namespaces; every mount below is private to the node.
set -euo pipefail
trap 'echo "init.sh: line $LINENO: \\"$BASH_COMMAND\\" failed" >&2' ERR
dir=$1 node_bin=$2 ip=$3 host_name=$4 cache=$5 ssh=$6
state=${NODE_STATE}

# The node's state dir (the host dir's node/), on a fresh /run; upper layers on a tmpfs.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p "$state"
mount --bind "$dir/node" "$state"
mount -t tmpfs -o mode=0700 tmpfs "$state/layers"
mount --bind "$node_bin" "$state/bin/node"

# Copy-on-write view of every top-level directory; read-only where overlayfs refuses.
for d in /*; do
  [[ -d $d && ! -L $d ]] || continue
  case $d in /proc | /sys | /dev | /run | /tmp | /root | /lost+found) continue ;; esac
  layer=$state/layers$d
  mkdir -p "$layer/upper" "$layer/work"
  options="lowerdir=$d,upperdir=$layer/upper,workdir=$layer/work"
  if ! mount -t overlay overlay -o "$options" "$d"; then
    case $d in /etc | /var | /usr) exit 1 ;; esac
    echo "init.sh: $d is read-only in the node" >&2
    mount --bind "$d" "$d"
    mount -o remount,bind,ro "$d"
  fi
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=0700 tmpfs /root
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys || mount -o remount,bind,ro /sys
mkdir -p -m 0755 /run/sshd
mkdir -p -m 1777 /run/lock

ip link set lo up
if [[ -n $ip ]]; then
  if [[ $ip == *:* ]]; then ip addr add "$ip/128" dev lo; else ip addr add "$ip/32" dev lo; fi
fi
echo "$host_name" >/proc/sys/kernel/hostname
echo "$host_name" >/etc/hostname

# In the node's own /etc: root logs in with bash (key only), systemctl is the stub.
if ! grep -q '^root:[^:]*:0:0:[^:]*:[^:]*:/bin/bash$' /etc/passwd; then
  sed -i -E 's#^(root:[^:]*:0:0:[^:]*:[^:]*:).*$#\\1/bin/bash#' /etc/passwd
fi
if grep -q '^root:!' /etc/shadow; then
  sed -i -E 's#^root:![^:]*:#root:*:#' /etc/shadow
fi
install -m 0755 "$state/systemctl-stub" /usr/bin/systemctl
if [[ ! -L /bin ]]; then install -m 0755 "$state/systemctl-stub" /bin/systemctl; fi

echo mounted
read -r go || exit 0
[[ $go == go ]] || exit 1

if [[ $cache == 1 ]]; then bash "$state/cache.sh" start; fi
if [[ $ssh == 1 ]]; then
  ${SSHD} -D -e -f "$state/sshd_config" </dev/null >>"$state/sshd.log" 2>&1 &
  sshd_pid=$!
  up=0
  for ((i = 0; i < 200; i++)); do
    if (exec 3<>/dev/tcp/${SSH_ADDRESS}/${SSH_PORT}) 2>/dev/null; then up=1; break; fi
    kill -0 "$sshd_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ((!up)); then
    echo "init.sh: sshd did not start, see $state/sshd.log:" >&2
    cat "$state/sshd.log" >&2
    exit 1
  fi
fi
echo started
# Until the test process closes stdin (stop(), or the test process is gone).
while read -r _; do :; done
`;
