# shellcheck shell=bash
# On destroy, after the DaemonSet is gone: removes the interface and iptables rules node-cache
# (-skipteardown) left for LOCAL_DNS_IP, unless a node-cache still runs.

# Whether a node-cache process runs (no pgrep needed).
node_cache_running() {
  local comm_file name
  for comm_file in /proc/[0-9]*/comm; do
    read -r name <"${comm_file}" 2>/dev/null || continue
    [[ ${name} == node-cache ]] && return 0
  done
  return 1
}

# Deletes node-cache's rules with one iptables variant, by their saved words.
remove_rules() {
  local iptables=$1
  local pattern='^-A ([A-Z]+) (.*)-m comment --comment "(NodeLocal DNS Cache: [^"\\]*)"(.*)$'
  local table line chain comment
  local -a before after
  command -v "${iptables}-save" >/dev/null || return 0
  for table in raw filter; do
    # Listing a legacy table creates it: only those the kernel has.
    [[ $("${iptables}" -V) == *nf_tables* ]] || grep -qsx "${table}" "${legacy_tables}" || continue
    while IFS= read -r line; do
      [[ ${line} =~ ${pattern} && ${line} == *" ${LOCAL_DNS_IP}/"* ]] || continue
      chain=${BASH_REMATCH[1]}
      comment=${BASH_REMATCH[3]}
      read -ra before <<<"${BASH_REMATCH[2]}"
      read -ra after <<<"${BASH_REMATCH[4]}"
      "${iptables}" -w 10 -t "${table}" -D "${chain}" "${before[@]}" \
        -m comment --comment "${comment}" "${after[@]}"
      removed_rules=$((removed_rules + 1))
    done < <("${iptables}-save" -t "${table}" 2>/dev/null || true)
  done
}

cleanup_main() {
  set -euo pipefail
  export LC_ALL=C
  [[ ${1-} == delete ]] || { echo 'usage: bash -s delete < cleanup' >&2; exit 2; }
  local say="nodelocaldns cleanup on ${NODE_NAME}:"
  if node_cache_running; then
    echo "${say} node-cache still runs here; nothing removed"
    return 0
  fi
  local family=ip variant interface=none
  [[ ${LOCAL_DNS_IP} == *:* ]] && family=ip6
  local legacy_tables=/proc/net/${family}_tables_names
  removed_rules=0
  # node-cache picks legacy or nft by what the node uses: try both.
  for variant in "${family}tables-legacy" "${family}tables-nft" "${family}tables"; do
    remove_rules "${variant}"
  done
  if ip -o addr show dev nodelocaldns 2>/dev/null | grep -qF " ${LOCAL_DNS_IP}/"; then
    ip link delete nodelocaldns
    interface=removed
  fi
  echo "${say} removed ${removed_rules} iptables rule(s); interface nodelocaldns: ${interface}"
}
