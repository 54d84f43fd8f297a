# shellcheck disable=SC2034 # the values are read by the delivered program
{
exec </dev/null
# nodelocaldns switch launcher for node node-1: runs the node program (from the
# ConfigMap node-local-dns-node-program, only with the sha256 below), which points
# kubelet at the cache (create, update), back (delete) or says what create would do (check).
# As root: bash -s create < launcher. While switched it keeps /var/lib/nodelocaldns (0700).
# Source: components/nodeProgram/*.bash. This node's values, validated, then the launcher's:
bash_variables_at_start=$(compgen -v)
readonly NODE_NAME=node-1
readonly LOCAL_DNS_IP=169.254.20.10
readonly CLUSTER_DNS_IP=10.96.0.10
readonly FALLBACK_TO_KUBE_DNS=no
readonly CLUSTER_DOMAIN=cluster.local
readonly STATE_DIR=/var/lib/nodelocaldns
readonly KUBELET_PATH=''
readonly KUBELET_FORMAT=auto
readonly READY_TIMEOUT_SECONDS=120
readonly KUBELET_TIMEOUT_SECONDS=60
readonly LOCK_TIMEOUT_SECONDS=270
readonly PROGRAM_SHA256=e638087777377b2b87d3f62299e65ab9d3a4832160c118896aa28dda80f2c39a
readonly PROGRAM_VOLUME=node-program
readonly PROGRAM_FILE=node-program.bash
readonly LAUNCHER_LOG_PREFIX=nodelocaldns
# ------------------------------------------------------------------------------------------------
# Reverting with the copy of the node program (this node's values in it) that every switch saves
# in STATE_DIR/program before it changes anything: the code that made the switch, needing nothing
# from the cluster. The guard always reverts so; the launcher when no delivered program is there.
# ------------------------------------------------------------------------------------------------

# LAUNCHER_LOG_PREFIX names who speaks: nodelocaldns (the switch) or nodelocaldns-guard.
launcher_log() {
  printf '%s[%s]: %s\n' "${LAUNCHER_LOG_PREFIX}" "${NODE_NAME}" "$*"
}

launcher_fail() {
  printf '%s[%s]: error: %s\n' "${LAUNCHER_LOG_PREFIX}" "${NODE_NAME}" "$*" >&2
  exit 1
}

# The saved program runs as root: only if root alone can have written it.
check_saved_program() {
  local path=$1
  local details
  details=$(stat -c '%F:%u:%a' -- "${STATE_DIR}")
  if [[ -L ${STATE_DIR} || ${details} != directory:0:700 ]]; then
    launcher_fail "${STATE_DIR} is not a root-owned 0700 directory (${details});" \
      "not running ${path}"
  fi
  details=$(stat -c '%F:%u' -- "${path}")
  if [[ -L ${path} || ${details} != 'regular file:0' ]]; then
    launcher_fail "${path} is not a regular file owned by root; not running it"
  fi
}

# Runs the saved copy's delete. No copy: nothing was switched, unless a record says otherwise (a
# switch made by a version of this program that saved no copy), which is refused, not skipped.
revert_with_saved_program() {
  local program=${STATE_DIR}/program
  if [[ ! -e ${program} && ! -L ${program} ]]; then
    if [[ -e ${STATE_DIR}/record || -e ${STATE_DIR}/original-dns ]]; then
      launcher_fail "${STATE_DIR} records a switch but holds no saved node program to revert it;" \
        "run \`pulumi up\` once (it saves one), or revert by hand; nothing changed"
    fi
    launcher_log "no saved node program in ${STATE_DIR}: nothing to revert"
    return 0
  fi
  check_saved_program "${program}"
  launcher_log "running the revert of the node program saved in ${STATE_DIR}"
  bash "${program}" delete
}

# ------------------------------------------------------------------------------------------------
# The switch's launcher: finds the node program the cluster delivered, checks it, loads it
#
# The node program (the rest of components/nodeProgram/) is too large to send to every node
# through Pulumi: it is stored once, in the ConfigMap node-local-dns-node-program, which the
# node-local-dns DaemonSet mounts. kubelet writes that volume on this node under
#   <kubelet root dir>/pods/<pod uid>/volumes/kubernetes.io~configmap/<volume>/<file>
# and keeps it up to date when the ConfigMap changes. This launcher carries the program's sha256:
# it runs only a file with exactly that content, read once into memory, so a newer, older or
# edited copy never runs. create, update and check wait for it (a pod that is starting, or kubelet
# still refreshing the volume after an update), at most READY_TIMEOUT_SECONDS.
#
# delete never waits: it takes the delivered program if it is there, otherwise the copy the last
# switch saved (saved.bash), which needs nothing from the cluster.
# ------------------------------------------------------------------------------------------------

readonly DEFAULT_KUBELET_ROOT_DIR=/var/lib/kubelet

# The delivered program's text, once found and checked (see find_delivered_program).
delivered_program=
# What find_delivered_program saw, for the error message: files with another content.
other_versions=

# Sets kubelet_root to kubelet's --root-dir from the running kubelet's command line, else the
# default. Read from /proc/<MainPID>/cmdline (NUL-separated); systemctl is bounded like everywhere
# in the program.
kubelet_root=${DEFAULT_KUBELET_ROOT_DIR}
read_kubelet_root_dir() {
  local pid
  local arg
  local value_follows=no
  kubelet_root=${DEFAULT_KUBELET_ROOT_DIR}
  pid=$(timeout -k 2 15 systemctl show --property=MainPID --value kubelet.service 2>/dev/null) ||
    pid=0
  if [[ ${pid} =~ ^[1-9][0-9]*$ && -r /proc/${pid}/cmdline ]]; then
    while IFS= read -r -d '' arg; do
      if [[ ${value_follows} == yes ]]; then
        kubelet_root=${arg}
        return 0
      fi
      case ${arg} in
        --root-dir=*)
          kubelet_root=${arg#--root-dir=}
          return 0
          ;;
        --root-dir)
          value_follows=yes
          ;;
      esac
    done 2>/dev/null <"/proc/${pid}/cmdline" || true
  fi
}

# Looks once through the pods' copies of the volume. Sets delivered_program and returns 0 when
# one has exactly PROGRAM_SHA256; otherwise lists the other contents in other_versions.
find_delivered_program() {
  local root_dir=$1
  local candidate
  local text
  local digest
  other_versions=
  for candidate in "${root_dir}"/pods/*/volumes/kubernetes.io~configmap/"${PROGRAM_VOLUME}/${PROGRAM_FILE}"; do
    if [[ ! -f ${candidate} ]]; then
      continue
    fi
    # Read once, whole (up to a NUL byte, which the program has none of), by bash itself.
    text=
    { IFS= read -r -d '' text <"${candidate}"; } 2>/dev/null || true
    digest=$(printf '%s' "${text}" | sha256sum)
    digest=${digest%% *}
    if [[ ${digest} == "${PROGRAM_SHA256}" ]]; then
      delivered_program=${text}
      return 0
    fi
    other_versions+=" ${digest:0:12}"
  done
  return 1
}

# find_delivered_program under the default root dir first, where nearly every kubelet keeps its
# pods: a file with PROGRAM_SHA256 is the program wherever it is. Only without one there is
# kubelet's own --root-dir read (a systemctl call) and, if it is another, looked under.
find_delivered_program_on_node() {
  if find_delivered_program "${DEFAULT_KUBELET_ROOT_DIR}"; then
    return 0
  fi
  read_kubelet_root_dir
  [[ ${kubelet_root} != "${DEFAULT_KUBELET_ROOT_DIR}" ]] && find_delivered_program "${kubelet_root}"
}

# Waits (bounded) until the delivered program is found; fails naming what it found instead.
wait_for_delivered_program() {
  local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
  if find_delivered_program_on_node; then
    return 0
  fi
  launcher_log "waiting for the node program ${PROGRAM_SHA256:0:12} in the" \
    "${PROGRAM_VOLUME} volume of this node's node-local-dns pod (${kubelet_root}/pods)"
  while ((SECONDS < deadline)); do
    sleep 1
    if find_delivered_program "${kubelet_root}"; then
      return 0
    fi
  done
  launcher_fail "no node program with sha256 ${PROGRAM_SHA256:0:12} under" \
    "${kubelet_root}/pods/*/volumes/kubernetes.io~configmap/${PROGRAM_VOLUME}/ after" \
    "${READY_TIMEOUT_SECONDS}s (found:${other_versions:- none});" \
    "is this stack's node-local-dns pod running on this node? nothing changed"
}

# The launcher's part of a run. For create, update and check: leaves the checked program text in
# delivered_program, for the caller to load at the top level (declarations inside a function would
# be local to it). For delete without a delivered program: reverts with the saved copy and exits.
launch() {
  local action=${1-}
  set -euo pipefail
  export LC_ALL=C
  if ! command -v sha256sum >/dev/null 2>&1; then
    launcher_fail "missing on this node: sha256sum (coreutils); nothing changed"
  fi
  case ${action} in
    create | update | check)
      wait_for_delivered_program
      ;;
    delete)
      if ! find_delivered_program_on_node; then
        revert_with_saved_program
        exit 0
      fi
      ;;
    *)
      printf 'usage: bash -s create|update|delete|check < switch\n' >&2
      exit 2
      ;;
  esac
  set +euo pipefail
}

launch "$@"
eval "${delivered_program}"
unset delivered_program
main "$@"
}
