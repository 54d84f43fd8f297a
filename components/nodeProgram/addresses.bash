# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# IP addresses and lists of them
#
# Kubelet's cluster DNS is a list of IPs. The program compares lists in canonical form (IPv6 in
# lower case, without leading zeros, the longest run of zero groups written "::"), the form `ip
# addr` prints and the stack's config parser stores, so that a value written differently in a
# kubelet file still compares equal. Lists are kept as comma-joined strings.
# ------------------------------------------------------------------------------------------------

readonly IPV4_OCTET='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
readonly IPV4_PATTERN="^(${IPV4_OCTET}\\.){3}${IPV4_OCTET}\$"
readonly HEX_GROUP_PATTERN='^[0-9A-Fa-f]{1,4}$'

# The results of canonical_ip and canonical_ip_list. They set these instead of printing, so that
# callers need no $( ): every command substitution forks the shell, and a switch runs these often.
canonical_address=
canonical_list=

# Sets canonical_address to the canonical form of an IPv4 or IPv6 address; fails for anything else.
canonical_ip() {
  local address=$1
  canonical_address=
  if [[ ${address} =~ ${IPV4_PATTERN} ]]; then
    canonical_address=${address}
    return 0
  fi
  if [[ ${address} != *:* || ${address} == *:::* || ${address} == *::*::* ]]; then
    return 1
  fi
  # Split around "::" and fill the gap with zero groups, to get all eight groups.
  local head=${address%%::*}
  local tail=
  local -a groups=()
  local -a tail_groups=()
  if [[ ${address} == *::* ]]; then
    tail=${address#*::}
    IFS=: read -r -a groups <<<"${head}"
    IFS=: read -r -a tail_groups <<<"${tail}"
    if ((${#groups[@]} + ${#tail_groups[@]} > 7)); then
      return 1
    fi
    while ((${#groups[@]} + ${#tail_groups[@]} < 8)); do
      groups+=(0)
    done
    groups+=("${tail_groups[@]}")
  else
    IFS=: read -r -a groups <<<"${address}"
  fi
  if ((${#groups[@]} != 8)); then
    return 1
  fi
  local i
  for ((i = 0; i < 8; i++)); do
    [[ ${groups[i]} =~ ${HEX_GROUP_PATTERN} ]] || return 1
    printf -v "groups[i]" '%x' "$((16#${groups[i]}))"
  done
  # The first longest run of two or more zero groups becomes "::" (RFC 5952).
  local best_start=-1
  local best_length=1
  local run_start=-1
  for ((i = 0; i <= 8; i++)); do
    if ((i < 8)) && [[ ${groups[i]} == 0 ]]; then
      if ((run_start < 0)); then
        run_start=${i}
      fi
    elif ((run_start >= 0)); then
      if ((i - run_start > best_length)); then
        best_start=${run_start}
        best_length=$((i - run_start))
      fi
      run_start=-1
    fi
  done
  # "${groups[*]}" joins with the first character of IFS.
  local IFS=:
  if ((best_start < 0)); then
    canonical_address=${groups[*]}
    return 0
  fi
  canonical_address=${groups[*]:0:best_start}::${groups[*]:best_start+best_length}
}

# True when addresses $1 and $2 are of one family (both IPv4 or both IPv6).
same_ip_family() {
  if [[ $1 == *:* ]]; then
    [[ $2 == *:* ]]
  else
    [[ $2 != *:* ]]
  fi
}

# Sets canonical_list to the comma-separated list $1 with each IP in canonical form; fails if an
# entry is not an IP.
canonical_ip_list() {
  local list=$1
  local -a entries=()
  local entry
  local out=
  canonical_list=
  IFS=, read -r -a entries <<<"${list}"
  if [[ -z ${list} || ${list} == *, || ${#entries[@]} -eq 0 ]]; then
    return 1
  fi
  for entry in "${entries[@]}"; do
    canonical_ip "${entry}" || return 1
    out+=${out:+,}${canonical_address}
  done
  canonical_list=${out}
}

# True when the comma-separated list $1 holds the address $2.
list_contains() {
  [[ ,$1, == *,"$2",* ]]
}
