# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The cluster DNS setting inside one file
#
# locate_setting finds the setting in a file's bytes and sets:
#   setting_count   how many settings the file holds (a mention in a comment is not one)
#   setting_list    the IPs, canonical and comma-joined ("" for an empty list)
#   setting_start   byte offset and length of the list's text (what an edit replaces)
#   setting_length
#   setting_style   how the list is written: flag (a,b after --cluster-dns), flow ([a, b]),
#                   block (one "- a" line per IP), json (["a", "b"])
#   setting_quote   the quote around the first IP in flow and block style ("", " or ')
#   setting_indent  block style: what comes before the IP on the first item line ("  - ")
#   setting_line_end block style: what ends it (spaces, a comment, a CR)
#   setting_lead    flow and json style: the blanks before the first and after the last IP
#   setting_trail
#   entry_starts    byte offset and length of each IP as written (without quotes), so that an
#   entry_lengths   edit that keeps the number of IPs changes those bytes and nothing else
# A setting it cannot read for sure (an IP list it cannot parse, a variable, YAML it does not
# know) stops the run: guessing which value kubelet uses is not safe.
#
# Kinds of file: env-file (systemd EnvironmentFile, e.g. /etc/default/kubelet) and unit-file
# (a unit or drop-in: Environment= or ExecStart= lines) hold the --cluster-dns flag; config-file
# and dropin hold a KubeletConfiguration, in YAML or JSON, with a top-level clusterDNS list.
# ------------------------------------------------------------------------------------------------

readonly RAW_IP_LIST='^[0-9A-Fa-f.:]+(,[0-9A-Fa-f.:]+)*$'
# --cluster-dns=LIST or --cluster-dns LIST; LIST ends at a blank, a quote, a backslash or the end.
readonly FLAG_SETTING='--cluster-dns([=]|[[:space:]]+)([^[:space:]"'"'"'\\]*)'
readonly YAML_FLOW_SETTING='^(clusterDNS:[[:space:]]*\[)([^]#]*)\]'
readonly YAML_BLOCK_START='^clusterDNS:[[:space:]]*(#.*)?'$'\r''?$'
# Groups: 1 indent and dash, 2 opening quote, 3 IP, 4 closing quote, 5 the rest of the line.
readonly YAML_BLOCK_ITEM='^([[:space:]]*-[[:space:]]+)(["'"'"']?)([0-9A-Fa-f.:]+)(["'"'"']?)'\
'([[:space:]]*(#.*)?'$'\r''?)$'
readonly YAML_ANY_ITEM='^[[:space:]]*-'
readonly JSON_SETTING='^(.*"clusterDNS"[[:space:]]*:[[:space:]]*\[)([^]]*)\]'

setting_count=0
setting_list=
setting_start=0
setting_length=0
setting_style=
setting_quote=
setting_indent=
setting_line_end=
setting_lead=
setting_trail=
entry_starts=()
entry_lengths=()

# $1: the file's bytes, $2: its kind, $3: its path (for messages).
locate_setting() {
  setting_count=0
  setting_list=
  setting_start=0
  setting_length=0
  setting_style=
  setting_quote=
  setting_indent=
  setting_line_end=
  setting_lead=
  setting_trail=
  entry_starts=()
  entry_lengths=()
  case $2 in
    env-file | unit-file) locate_flag_setting "$1" "$3 ($2)" ;;
    config-file | dropin)
      if [[ $1 =~ ^[[:space:]]*\{ ]]; then
        locate_json_setting "$1" "$3 (JSON KubeletConfiguration)"
      else
        locate_yaml_setting "$1" "$3 (YAML KubeletConfiguration)"
      fi
      ;;
    *) fail "unknown kind of kubelet file: $2" ;;
  esac
}

# Turns a raw list (as written in the file) into setting_list, or stops the run.
accept_raw_list() {
  local raw=$1
  local where=$2
  if ! canonical_ip_list "${raw}"; then
    refuse "${where}: cannot read the cluster DNS value ${raw:0:60}"
  fi
  setting_list=${canonical_list}
}

# Flag style: every line but comment lines. systemd reads a line starting with # or ; as a
# comment, and nothing else: a "#" later on a line is part of the value, and kubelet gets what
# follows it as arguments. So a --cluster-dns after a "#" counts.
locate_flag_setting() {
  local content=$1
  local where=$2
  local rest=${content}
  local offset=0
  local line
  local code
  local mentions
  local before
  local separator
  local raw
  while [[ -n ${rest} ]]; do
    line=${rest%%$'\n'*}
    if [[ ${rest} == *$'\n'* ]]; then
      rest=${rest#*$'\n'}
    else
      rest=
    fi
    if [[ ${line} != *--cluster-dns* || ${line} =~ ^[[:space:]]*[\#\;] ]]; then
      offset=$((offset + ${#line} + 1))
      continue
    fi
    code=${line}
    mentions=${code//--cluster-dns/}
    mentions=$(((${#code} - ${#mentions}) / 13))
    if ((mentions > 0)) && ((setting_count == 0)); then
      if [[ ! ${code} =~ ${FLAG_SETTING} ]]; then
        refuse "${where}: cannot read its --cluster-dns setting"
      fi
      separator=${BASH_REMATCH[1]}
      raw=${BASH_REMATCH[2]}
      if [[ ! ${raw} =~ ${RAW_IP_LIST} ]]; then
        refuse "${where}: cannot read its --cluster-dns setting"
      fi
      before=${code%%--cluster-dns*}
      setting_start=$((offset + ${#before} + ${#separator} + 13))
      setting_length=${#raw}
      setting_style=flag
      accept_raw_list "${raw}" "${where}"
      record_comma_entries "${raw}" "${setting_start}"
    fi
    setting_count=$((setting_count + mentions))
    offset=$((offset + ${#line} + 1))
  done
}

# YAML: a top-level clusterDNS key, as a flow list on its line or a block list below it.
locate_yaml_setting() {
  local content=$1
  local where=$2
  local rest=${content}
  local offset=0
  local line
  local raw
  local in_block=no
  while [[ -n ${rest} ]]; do
    line=${rest%%$'\n'*}
    if [[ ${rest} == *$'\n'* ]]; then
      rest=${rest#*$'\n'}
    else
      rest=
    fi
    if [[ ${in_block} == yes ]]; then
      if [[ ${line} =~ ${YAML_BLOCK_ITEM} && ${BASH_REMATCH[2]} == "${BASH_REMATCH[4]}" ]]; then
        if [[ -z ${setting_list} ]]; then
          setting_start=${offset}
          setting_indent=${BASH_REMATCH[1]}
          setting_quote=${BASH_REMATCH[2]}
          setting_line_end=${BASH_REMATCH[5]}
        fi
        entry_starts+=($((offset + ${#BASH_REMATCH[1]} + ${#BASH_REMATCH[2]})))
        entry_lengths+=(${#BASH_REMATCH[3]})
        raw=${BASH_REMATCH[3]}
        canonical_ip "${raw}" || refuse "${where}: cannot read clusterDNS entry ${raw:0:60}"
        setting_list+=${setting_list:+,}${canonical_address}
        setting_length=$((offset + ${#line} - setting_start))
        offset=$((offset + ${#line} + 1))
        continue
      fi
      if [[ ${line} =~ ${YAML_ANY_ITEM} ]]; then
        refuse "${where}: cannot read a clusterDNS entry: ${line:0:60}"
      fi
      in_block=no
    fi
    if [[ ${line} == clusterDNS:* ]]; then
      setting_count=$((setting_count + 1))
      if [[ ${line} =~ ${YAML_FLOW_SETTING} ]]; then
        setting_style=flow
        setting_start=$((offset + ${#BASH_REMATCH[1]}))
        setting_length=${#BASH_REMATCH[2]}
        read_flow_list "${BASH_REMATCH[2]}" "${setting_start}" "${where}"
      elif [[ ${line} =~ ${YAML_BLOCK_START} ]]; then
        setting_style=block
        in_block=yes
      else
        refuse "${where}: cannot read its clusterDNS setting"
      fi
    elif yaml_code "${line}" && [[ ${yaml_code_part} == *clusterDNS* ]]; then
      refuse "${where}: clusterDNS appears where this program cannot read it: ${line:0:60}"
    fi
    offset=$((offset + ${#line} + 1))
  done
  if [[ ${setting_style} == block && -z ${setting_list} ]]; then
    refuse "${where}: clusterDNS has no entries this program can read"
  fi
}

# Sets yaml_code_part to line $1 without its YAML comment (" #..." or a whole "#" line).
yaml_code_part=
yaml_code() {
  yaml_code_part=${1%%[[:space:]]#*}
  if [[ ${yaml_code_part} =~ ^[[:space:]]*# ]]; then
    yaml_code_part=
  fi
}

# Records where each IP of a comma list $1 (as written, at byte offset $2) starts, and its length.
record_comma_entries() {
  local list=$1
  local at=$2
  local entry
  local -a entries=()
  IFS=, read -r -a entries <<<"${list}"
  for entry in "${entries[@]}"; do
    entry_starts+=("${at}")
    entry_lengths+=("${#entry}")
    at=$((at + ${#entry} + 1))
  done
}

# Reads a flow or JSON list: $1 the text between the brackets, $2 its byte offset in the file.
# Each entry may have blanks (newlines in JSON) around it and quotes.
read_flow_list() {
  local text=$1
  local at=$2
  local where=$3
  local segment
  local entry
  local lead
  local quote
  local raw=
  local -a segments=()
  if [[ -z ${text//[[:space:]]/} ]]; then
    setting_list=
    return 0
  fi
  setting_lead=${text%%[![:space:]]*}
  setting_trail=${text##*[![:space:]]}
  # (read gets the text plus the newline <<< adds, which the last entry's trimming drops.)
  IFS=, read -r -d '' -a segments <<<"${text}" || true
  for segment in "${segments[@]}"; do
    entry=${segment}
    lead=${entry%%[![:space:]]*}
    entry=${entry:${#lead}}
    entry=${entry%"${entry##*[![:space:]]}"}
    quote=${entry:0:1}
    if [[ ${quote} == [\"\'] && ${#entry} -ge 2 && ${entry} == *"${quote}" ]]; then
      entry=${entry:1:${#entry}-2}
    else
      quote=
    fi
    if [[ -z ${raw} ]]; then
      setting_quote=${quote}
    fi
    entry_starts+=($((at + ${#lead} + ${#quote})))
    entry_lengths+=("${#entry}")
    at=$((at + ${#segment} + 1))
    raw+=${raw:+,}${entry}
  done
  if [[ ! ${raw} =~ ${RAW_IP_LIST} ]]; then
    refuse "${where}: cannot read the clusterDNS list ${text:0:60}"
  fi
  accept_raw_list "${raw}" "${where}"
}

# JSON: the one "clusterDNS" key (KubeletConfiguration has no other key of that name).
locate_json_setting() {
  local content=$1
  local where=$2
  local without=${content//\"clusterDNS\"/}
  setting_count=$(((${#content} - ${#without}) / 12))
  if ((setting_count != 1)); then
    return 0
  fi
  if [[ ! ${content} =~ ${JSON_SETTING} ]]; then
    refuse "${where}: cannot read its clusterDNS setting"
  fi
  setting_style=json
  setting_start=${#BASH_REMATCH[1]}
  setting_length=${#BASH_REMATCH[2]}
  read_flow_list "${BASH_REMATCH[2]}" "${setting_start}" "${where}"
  if [[ -n ${setting_list} && ${setting_quote} != '"' ]]; then
    refuse "${where}: clusterDNS entries are not JSON strings"
  fi
}

# Prints the list $1 (comma-joined IPs) written in the style of the located setting, for an edit
# that changes the number of IPs.
render_setting_list() {
  local list=$1
  local -a entries=()
  local entry
  local out=
  local separator
  IFS=, read -r -a entries <<<"${list}"
  case ${setting_style} in
    flag)
      out=${list}
      ;;
    flow | json)
      # One entry per line stays one entry per line (a multi-line JSON list).
      separator=', '
      if [[ ${setting_lead} == *$'\n'* ]]; then
        separator=,${setting_lead}
      fi
      for entry in "${entries[@]}"; do
        out+=${out:+${separator}}${setting_quote}${entry}${setting_quote}
      done
      out=${setting_lead}${out}${setting_trail}
      ;;
    block)
      # Every item line like the first; only the first keeps its trailing comment.
      for entry in "${entries[@]}"; do
        if [[ -z ${out} ]]; then
          out=${setting_indent}${setting_quote}${entry}${setting_quote}${setting_line_end}
        else
          out+=$'\n'${setting_indent}${setting_quote}${entry}${setting_quote}
          out+=${setting_line_end##*[!$'\r']}
        fi
      done
      ;;
  esac
  printf '%s' "${out}"
}

# Sets the variable named $3 to the file content $1 with the located setting's list set to $2.
# With as many IPs as before, only the IPs that change are rewritten (quotes, comments and line
# ends of every entry stay); otherwise the list is written anew in the style of its first entry.
# (Not printed: a command substitution would drop the file's final newlines. Its locals have names
# no caller uses, as printf -v would set a local of the same name instead.)
replace_setting() {
  local edited=$1
  local edit_list=$2
  local rendered
  local i
  local start
  local end
  local -a old_entries=()
  local -a new_entries=()
  IFS=, read -r -a old_entries <<<"${setting_list}"
  IFS=, read -r -a new_entries <<<"${edit_list}"
  if [[ -n ${setting_list} && ${#old_entries[@]} -eq ${#new_entries[@]} ]]; then
    for ((i = ${#new_entries[@]} - 1; i >= 0; i--)); do
      if [[ ${new_entries[i]} != "${old_entries[i]}" ]]; then
        start=${entry_starts[i]}
        end=$((entry_starts[i] + entry_lengths[i]))
        edited=${edited:0:start}${new_entries[i]}${edited:end}
      fi
    done
    printf -v "$3" '%s' "${edited}"
    return 0
  fi
  rendered=$(render_setting_list "${edit_list}")
  printf -v "$3" '%s' "${edited:0:setting_start}${rendered}${edited:setting_start+setting_length}"
}
