# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# Where the running kubelet takes its cluster DNS from
#
# Kubelet's precedence, highest first:
#   1. a --cluster-dns flag on its command line; systemd builds that line from the unit's
#      ExecStart, Environment= lines and EnvironmentFile= files (read at each start);
#   2. the last KubeletConfiguration drop-in (*.conf, by name) in --config-dir that sets clusterDNS;
#   3. the --config file.
# detect_dns_source reads the running kubelet's command line and systemd's view of its unit,
# and sets:
#   kubelet_running  yes | no
#   effective_list   the cluster DNS kubelet uses ("" when it has none)
#   source_path      the file to edit (for a dropin: the file to write)
#   source_kind      env-file | unit-file | config-file | dropin (our own drop-in in --config-dir)
#   source_exists    yes | no (our drop-in, not written yet)
#   source_note      how kubelet gets the value, for messages
# When kubelet is not running, the well-known files stand in for its command line.
# ------------------------------------------------------------------------------------------------

# Our own drop-in, when kubelet has --config-dir: sorts after the usual 00-..50- names, so it wins
# over them; revert deletes it, so it never conflicts with anyone's edits.
readonly DROPIN_NAME=99-nodelocaldns.conf
# When kubelet is not running: the files where kubelet's cluster DNS usually lives, and their kind.
readonly WELL_KNOWN_SOURCES=(
  /etc/kubernetes/kubelet:env-file
  /etc/default/kubelet:env-file
  /etc/sysconfig/kubelet:env-file
  /var/lib/kubelet/kubeadm-flags.env:env-file
  /var/lib/kubelet/config.yaml:config-file
  /etc/kubernetes/kubelet-config.yaml:config-file
  /etc/kubernetes/kubelet/kubelet-config.json:config-file
)

kubelet_running=no
effective_list=
source_path=
source_kind=
source_exists=yes
source_note=
healthz_address=${DEFAULT_HEALTHZ_ADDRESS}
healthz_port=${DEFAULT_HEALTHZ_PORT}

# Sets flag_value to the one value of kubelet flag --$1 ("" when absent; --flag=value and
# --flag value forms); two stop the run.
flag_value=
read_flag() {
  local flag=--$1
  local i
  local -a values=()
  for ((i = 0; i < ${#kubelet_args[@]}; i++)); do
    case ${kubelet_args[i]} in
      "${flag}="*) values+=("${kubelet_args[i]#*=}") ;;
      "${flag}")
        values+=("${kubelet_args[i + 1]-}")
        i=$((i + 1))
        ;;
    esac
  done
  if ((${#values[@]} > 1)); then
    refuse "kubelet has --$1 ${#values[@]} times"
  fi
  flag_value=${values[0]-}
  if [[ -n ${flag_value} && ${flag_value} != /* && $1 == config* ]]; then
    refuse "kubelet's --$1 ${flag_value:0:80} is not an absolute path"
  fi
}

# Prints the files of kubelet's --config-dir $1 that it reads: *.conf, sorted by name.
config_dir_files() {
  local file
  for file in "$1"/*.conf; do
    if [[ -e ${file} ]]; then
      printf '%s\n' "${file}"
    fi
  done
}

# $1 = just-read: systemd's view of the unit and kubelet's process were read a moment ago, by the
# look that found the restarted kubelet healthy (restart_kubelet_and_wait); they are used as they
# are instead of asking systemd again (a `systemctl show` costs tens of milliseconds).
detect_dns_source() {
  local process=${1:-}
  effective_list=
  source_path=
  source_kind=
  source_exists=yes
  source_note=
  if [[ ${process} != just-read ]]; then
    read_kubelet_process
  fi
  if ((kubelet_pid == 0)); then
    kubelet_running=no
    detect_from_well_known_files
  else
    kubelet_running=yes
    read_flag cluster-dns
    if [[ -n ${flag_value} ]]; then
      canonical_ip_list "${flag_value}" ||
        refuse "kubelet runs with --cluster-dns=${flag_value:0:60}, which this program cannot read"
      effective_list=${canonical_list}
      find_flag_file
    else
      find_config_source
    fi
  fi
  apply_configured_pins
}

# The --cluster-dns flag comes from the unit: a unit file or drop-in, or one of its
# EnvironmentFiles. Exactly one of them may mention it, with the value kubelet runs with. (The
# unit's files as read_kubelet_process read them, just before.)
find_flag_file() {
  local -a candidates=()
  local entry
  local path
  local kind
  local content
  local found=
  local files_with_setting=
  for path in ${unit[FragmentPath]} ${unit[DropInPaths]}; do
    candidates+=("${path}:unit-file")
  done
  while IFS= read -r entry; do
    if [[ -n ${entry} ]]; then
      candidates+=("${entry%% (ignore_errors=*}:env-file")
    fi
  done <<<"${unit[EnvironmentFiles]}"
  for entry in "${candidates[@]}"; do
    path=${entry%:*}
    kind=${entry##*:}
    if [[ ! -e ${path} && ! -L ${path} ]]; then
      continue
    fi
    read_file_exact "${path}" content
    locate_setting "${content}" "${kind}" "${path}"
    if ((setting_count > 0)); then
      files_with_setting+=" ${path}"
      if ((setting_count == 1)) && [[ ${setting_list} == "${effective_list}" ]]; then
        found=${entry}
      fi
    fi
  done
  if [[ -z ${files_with_setting} ]]; then
    refuse "kubelet runs with --cluster-dns=${effective_list}, but no unit file or" \
      "EnvironmentFile of ${KUBELET_UNIT} sets it"
  fi
  if [[ -z ${found} || ${files_with_setting} == " "*" "* ]]; then
    refuse "kubelet runs with --cluster-dns=${effective_list};" \
      "--cluster-dns is set in:${files_with_setting};" \
      "cannot tell which one to edit (set kubelet.path)"
  fi
  source_path=${found%:*}
  source_kind=${found##*:}
  source_note="--cluster-dns flag from ${source_path} (${source_kind})"
}

# No flag: the config file and the --config-dir drop-ins, the last setting winning.
find_config_source() {
  local config
  local dir
  local file
  local content
  local from=
  local from_list=
  read_flag config
  config=${flag_value}
  read_flag config-dir
  dir=${flag_value}
  if [[ -n ${config} && -e ${config} ]]; then
    read_file_exact "${config}" content
    locate_setting "${content}" config-file "${config}"
    if ((setting_count > 1)); then
      refuse "${config}: more than one clusterDNS setting"
    fi
    if ((setting_count == 1)); then
      from=${config}
      from_list=${setting_list}
    fi
  fi
  if [[ -n ${dir} ]]; then
    while IFS= read -r file; do
      read_file_exact "${file}" content
      locate_setting "${content}" config-file "${file}"
      if ((setting_count > 1)); then
        refuse "${file}: more than one clusterDNS setting"
      fi
      if ((setting_count == 1)); then
        from=${file}
        from_list=${setting_list}
      fi
    done < <(config_dir_files "${dir}")
  fi
  effective_list=${from_list}
  if [[ -z ${from} ]]; then
    source_note="no --cluster-dns flag and no clusterDNS in --config ${config:-(none)}"
    source_note+=" or --config-dir ${dir:-(none)}"
    return 0
  fi
  source_note="clusterDNS in ${from}"
  source_path=${from}
  source_kind="config-file"
  # With --config-dir, our own drop-in overrides the value (unless a drop-in that sorts after it
  # sets clusterDNS: then that one is edited), and kubelet.path pins the file to edit instead.
  if [[ -n ${dir} && -z ${KUBELET_PATH} ]]; then
    local ours=${dir}/${DROPIN_NAME}
    if [[ ${from} == "${ours}" ]]; then
      source_kind=dropin
    elif [[ ${from} != "${dir}"/* || ${from##*/} < "${DROPIN_NAME}" ]]; then
      source_path=${ours}
      source_kind=dropin
      source_exists=no
      if [[ -e ${ours} || -L ${ours} ]]; then
        refuse "${ours} exists but does not set clusterDNS; remove it or set kubelet.path"
      fi
    fi
  fi
}

# kubelet is not running: the one well-known file (or kubelet.path) that sets a cluster DNS.
detect_from_well_known_files() {
  local entry
  local path
  local kind
  local content
  local found=
  local -a sources=("${WELL_KNOWN_SOURCES[@]}")
  if [[ -n ${KUBELET_PATH} ]]; then
    sources=("${KUBELET_PATH}:${PINNED_KIND}")
  fi
  for entry in "${sources[@]}"; do
    path=${entry%:*}
    kind=${entry##*:}
    if [[ ! -e ${path} && ! -L ${path} ]]; then
      continue
    fi
    read_file_exact "${path}" content
    if [[ ${kind} == auto ]]; then
      kind=env-file
      if [[ $'\n'${content} == *$'\n'clusterDNS:* || ${content} == *'"clusterDNS"'* ]]; then
        kind="config-file"
      fi
    fi
    locate_setting "${content}" "${kind}" "${path}"
    if ((setting_count > 1)); then
      refuse "${path}: more than one cluster DNS setting"
    fi
    if ((setting_count == 1)); then
      if [[ -n ${found} ]]; then
        refuse "kubelet is not running and the cluster DNS is set in both ${found%:*}" \
          "and ${path}: cannot tell which one kubelet uses"
      fi
      found=${path}:${kind}
      effective_list=${setting_list}
    fi
  done
  if [[ -n ${found} ]]; then
    source_path=${found%:*}
    source_kind=${found##*:}
    source_note="kubelet not running; cluster DNS in ${source_path} (${source_kind})"
  else
    source_note="kubelet not running; no cluster DNS in the well-known files"
  fi
}

# kubelet.format as a kind of source ("auto" when not pinned).
case ${KUBELET_FORMAT} in
  config-file | env-file | unit-file) readonly PINNED_KIND=${KUBELET_FORMAT} ;;
  *) readonly PINNED_KIND=auto ;;
esac

# kubelet.path and kubelet.format, when set, must name what detection found.
apply_configured_pins() {
  local kind=${source_kind}
  if [[ -z ${source_path} ]]; then
    return 0
  fi
  if [[ -n ${KUBELET_PATH} && ${source_path} != "${KUBELET_PATH}" ]]; then
    refuse "kubelet takes its cluster DNS from ${source_path} (${source_note})," \
      "not from kubelet.path ${KUBELET_PATH}"
  fi
  if [[ ${kind} == dropin ]]; then
    kind="config-file"
  fi
  if [[ ${PINNED_KIND} != auto && ${kind} != "${PINNED_KIND}" ]]; then
    refuse "kubelet's cluster DNS is in ${source_path} (${source_kind})," \
      "not a ${KUBELET_FORMAT} as kubelet.format says"
  fi
}

# Prints top-level scalar $2 of KubeletConfiguration text $1 (YAML or JSON), if set.
config_scalar() {
  local content=$1
  local key=$2
  local yaml="(^|"$'\n'")${key}:[[:space:]]*[\"']?([^\"'#[:space:]]*)"
  local json="\"${key}\"[[:space:]]*:[[:space:]]*\"?([^\",}[:space:]]*)"
  if [[ ${content} =~ ^[[:space:]]*\{ ]]; then
    if [[ ${content} =~ ${json} ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
    fi
  elif [[ ${content} =~ ${yaml} ]]; then
    printf '%s' "${BASH_REMATCH[2]}"
  fi
}

# Sets healthz_address and healthz_port for the running kubelet: flags, else the last config
# drop-in or the config file that sets them, else kubelet's defaults.
read_kubelet_health_endpoint() {
  local file
  local content
  local value
  local config
  local dir
  local -a files=()
  healthz_address=${DEFAULT_HEALTHZ_ADDRESS}
  healthz_port=${DEFAULT_HEALTHZ_PORT}
  read_flag config
  config=${flag_value}
  read_flag config-dir
  dir=${flag_value}
  if [[ -n ${config} && -f ${config} ]]; then
    files+=("${config}")
  fi
  if [[ -n ${dir} ]]; then
    mapfile -t -O "${#files[@]}" files < <(config_dir_files "${dir}")
  fi
  for file in "${files[@]}"; do
    read_file_exact "${file}" content
    value=$(config_scalar "${content}" healthzPort)
    healthz_port=${value:-${healthz_port}}
    value=$(config_scalar "${content}" healthzBindAddress)
    healthz_address=${value:-${healthz_address}}
  done
  read_flag healthz-port
  healthz_port=${flag_value:-${healthz_port}}
  read_flag healthz-bind-address
  healthz_address=${flag_value:-${healthz_address}}
  if [[ ! ${healthz_port} =~ ^[0-9]{1,5}$ ]]; then
    fail "kubelet's healthzPort ${healthz_port:0:20} is not a port number"
  fi
  case ${healthz_address} in
    0.0.0.0) healthz_address=127.0.0.1 ;;
    :: | '[::]') healthz_address=::1 ;;
  esac
  if ! canonical_ip "${healthz_address}"; then
    fail "kubelet's healthzBindAddress ${healthz_address:0:60} is not an IP address"
  fi
}

# True when path $1 is a file this program could pick as kubelet's cluster DNS source now: a
# recorded path is only honoured if it is (state cannot redirect a revert to another file). Call
# it right after read_kubelet_process, whose view of the unit it uses.
is_kubelet_source_candidate() {
  local path=$1
  local entry
  local config
  local dir
  if [[ ${path} == "${KUBELET_PATH}" ]]; then
    return 0
  fi
  for entry in "${WELL_KNOWN_SOURCES[@]}"; do
    if [[ ${path} == "${entry%:*}" ]]; then
      return 0
    fi
  done
  for entry in ${unit[FragmentPath]} ${unit[DropInPaths]}; do
    if [[ ${path} == "${entry}" ]]; then
      return 0
    fi
  done
  while IFS= read -r entry; do
    if [[ ${path} == "${entry%% (ignore_errors=*}" ]]; then
      return 0
    fi
  done <<<"${unit[EnvironmentFiles]}"
  if ((kubelet_pid != 0)); then
    read_flag config
    config=${flag_value}
    read_flag config-dir
    dir=${flag_value}
    if [[ ${path} == "${config}" ]]; then
      return 0
    fi
    if [[ -n ${dir} && ${path%/*} == "${dir}" && ${path} == *.conf ]]; then
      return 0
    fi
  fi
  return 1
}
