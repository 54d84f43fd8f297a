# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The actions: create and update switch kubelet to the cache, delete reverts it, check only looks
# ------------------------------------------------------------------------------------------------

# Sets intended_list to the cluster DNS kubelet gets when its original list is $1: the kube-dns
# entry replaced by the cache's address, or with fallbackToKubeDns by the cache's address and then
# kube-dns, which pods ask when the cache does not answer. On a dual-stack list the entry of the
# other family stays. (These helpers set a variable rather than print: $( ) would fork the shell.)
intended_list=
intended_list_for() {
  local original=$1
  local entry
  local out=
  local -a entries=()
  IFS=, read -r -a entries <<<"${original}"
  for entry in "${entries[@]}"; do
    if [[ ${entry} == "${CLUSTER_DNS_IP}" ]]; then
      entry=${LOCAL_DNS_IP}
      if [[ ${FALLBACK_TO_KUBE_DNS} == yes ]]; then
        entry+=,${CLUSTER_DNS_IP}
      fi
    fi
    out+=${out:+,}${entry}
  done
  intended_list=${out}
}

# kubelet gives pods at most 3 nameservers (glibc's MAXNS) and drops the rest with only an event,
# so a longer list would silently lose its last entries (the fallback among them).
readonly MAX_NAMESERVERS=3
refuse_long_list() {
  local list=$1
  local -a entries=()
  IFS=, read -r -a entries <<<"${list}"
  if ((${#entries[@]} > MAX_NAMESERVERS)); then
    refuse "the switched cluster DNS ${list} would hold ${#entries[@]} addresses;" \
      "kubelet gives pods only the first ${MAX_NAMESERVERS}"
  fi
}

# Sets before_switch_list to the list kubelet had before a switch that left list $1: the cache's
# address (and the kube-dns entry right after it, a fallback) back to kube-dns.
before_switch_list=
original_list_for() {
  local original=,$1,
  original=${original//,${LOCAL_DNS_IP},${CLUSTER_DNS_IP},/,${CLUSTER_DNS_IP},}
  original=${original//,${LOCAL_DNS_IP},/,${CLUSTER_DNS_IP},}
  original=${original#,}
  before_switch_list=${original%,}
}

# Our drop-in for kubelet's --config-dir, holding only the cluster DNS ($1, comma-joined).
dropin_content() {
  local list=$1
  local entry
  local text
  text="# Written by nodelocaldns for node ${NODE_NAME}: kubelet's cluster DNS is the"$'\n'
  text+="# node-local DNS cache. Removed by its revert (pulumi destroy). Do not edit."$'\n'
  text+='apiVersion: kubelet.config.k8s.io/v1beta1'$'\n'
  text+='kind: KubeletConfiguration'$'\n'
  text+='clusterDNS:'$'\n'
  for entry in ${list//,/ }; do
    text+="- ${entry}"$'\n'
  done
  printf '%s' "${text}"
}

# Sets new_content to the source file with its cluster DNS set to $1 (for our drop-in: the whole
# file), and checks that reading it back gives exactly that value.
new_content=
build_new_content() {
  local list=$1
  local content
  if [[ ${source_kind} == dropin ]]; then
    new_content=$(dropin_content "${list}")$'\n'
  else
    read_file_exact "${source_path}" content
    locate_setting "${content}" "${source_kind}" "${source_path}"
    replace_setting "${content}" "${list}" new_content
  fi
  locate_setting "${new_content}" "${source_kind}" "${source_path}"
  if ((setting_count != 1)) || [[ ${setting_list} != "${list}" ]]; then
    fail "internal error: the rewritten ${source_path} reads back as" \
      "${setting_list:-nothing}, not ${list}"
  fi
}

# create and update: the same idempotent step.
switch_node() {
  local intended
  detect_dns_source
  if [[ ${kubelet_running} != yes ]]; then
    refuse "kubelet is not running (${unit[ActiveState]}/${unit[SubState]});" \
      "start it or fix it first"
  fi
  if [[ -z ${effective_list} ]]; then
    refuse "kubelet has no cluster DNS: ${source_note}"
  fi
  log "kubelet (pid ${kubelet_pid}) uses cluster DNS ${effective_list}: ${source_note}"
  if [[ -n ${record[phase]:-} ]]; then
    switch_recorded_node
    return 0
  fi
  # The cache's address first: a list switched with a fallback holds kube-dns too.
  if list_contains "${effective_list}" "${LOCAL_DNS_IP}"; then
    adopt_switched_node
  elif list_contains "${effective_list}" "${CLUSTER_DNS_IP}"; then
    switch_fresh_node
  else
    refuse "kubelet's cluster DNS ${effective_list} does not hold clusterDnsIp" \
      "${CLUSTER_DNS_IP}, which the cache forwards to"
  fi
}

# A node with a record: already switched, switched to an older address, or put back behind our back.
switch_recorded_node() {
  local intended
  if [[ ${record[node]} != "${NODE_NAME}" ]]; then
    refuse "this machine is switched as node ${record[node]}; is it listed twice in the stack?"
  fi
  if [[ ${source_path} != "${record[source]}" ]]; then
    refuse "kubelet takes its cluster DNS from ${source_path} now, but the switch recorded" \
      "${record[source]}; revert it first"
  fi
  intended_list_for "${record[original_value]}"
  intended=${intended_list}
  if [[ ${effective_list} == "${intended}" ]]; then
    save_program_copy
    log "already switched: kubelet uses ${intended}; nothing to do, kubelet not restarted"
  elif [[ ${effective_list} == "${record[applied_value]}" ]]; then
    refuse_long_list "${intended}"
    log "switched to ${record[applied_value]} earlier; now switching to ${intended}"
    wait_for_cache
    build_new_content "${intended}"
    save_program_copy
    begin_step update new_content "${intended}"
    commit_step
    finish_switch_step
    log "switched: cluster DNS ${record[original_value]} -> ${intended} in ${source_path}" \
      "at ${step_done_at}"
  elif [[ ${effective_list} == "${record[original_value]}" ]]; then
    log "${source_path} was put back to ${effective_list} since the switch" \
      "(kubeadm upgrade, reimage?): switching again"
    record=()
    switch_fresh_node
  else
    refuse "kubelet's cluster DNS is ${effective_list}, but this program set" \
      "${record[applied_value]} (originally ${record[original_value]}): changed by someone else"
  fi
}

# A node that uses kube-dns: wait for the cache, record the original, switch, verify.
switch_fresh_node() {
  local intended
  local original_content
  local before_source=${source_path}
  local before_list=${effective_list}
  intended_list_for "${effective_list}"
  intended=${intended_list}
  refuse_long_list "${intended}"
  if ! same_ip_family "${LOCAL_DNS_IP}" "${CLUSTER_DNS_IP}"; then
    refuse "localDnsIp ${LOCAL_DNS_IP} and clusterDnsIp ${CLUSTER_DNS_IP}" \
      "are not of one address family"
  fi
  if [[ ${effective_list} == *,* ]]; then
    log "dual-stack or several resolvers (${effective_list}):" \
      "only ${CLUSTER_DNS_IP} is replaced, the others stay"
  fi
  wait_for_cache
  # After a wait (up to readyTimeoutSeconds) the source is found and read again: what is recorded
  # and rewritten is what is there now. A cache that answered at once left no time for a change.
  if [[ ${cache_waited} == yes ]]; then
    detect_dns_source
    if [[ ${source_path} != "${before_source}" || ${effective_list} != "${before_list}" ]]; then
      refuse "kubelet's cluster DNS changed while waiting for the cache" \
        "(now ${effective_list:-none} from ${source_path:-nowhere})"
    fi
  fi
  build_new_content "${intended}"
  # Nothing is written on the node before this point; the client may have left during the wait.
  ensure_client_connected "about to switch ${source_path}"
  record=([format]=${RECORD_FORMAT} [node]=${NODE_NAME} [source]=${source_path}
    [source_kind]=${source_kind} [original_value]=${effective_list} [original_exists]=no
    [daemon_reload]=no)
  if [[ ${source_kind} == unit-file ]]; then
    record[daemon_reload]=yes
  fi
  if [[ ${source_exists} == yes ]]; then
    read_file_exact "${source_path}" original_content
    save_state_file original "${original_content}"
    record[original_exists]=yes
  fi
  save_program_copy
  begin_step create new_content "${intended}"
  commit_step
  finish_switch_step
  log "switched: cluster DNS ${record[original_value]} -> ${intended} in ${source_path}" \
    "at ${step_done_at}"
}

# kubelet already uses the cache, with no record (switched by hand, e.g. with the write-up's sed):
# record it as if the file held kube-dns, so that a revert sets kube-dns back. No restart.
adopt_switched_node() {
  local original_list
  local original_content
  local current
  original_list_for "${effective_list}"
  original_list=${before_switch_list}
  if [[ ${source_kind} == dropin || ${source_exists} != yes ]]; then
    refuse "kubelet uses ${effective_list} from ${source_path} with no record of a switch;" \
      "cannot tell what to revert to"
  fi
  read_file_exact "${source_path}" current
  locate_setting "${current}" "${source_kind}" "${source_path}"
  replace_setting "${current}" "${original_list}" original_content
  record=([format]=${RECORD_FORMAT} [node]=${NODE_NAME} [source]=${source_path}
    [source_kind]=${source_kind} [original_value]=${original_list} [original_exists]=yes
    [applied_value]=${effective_list} [daemon_reload]=no [phase]=switched)
  if [[ ${source_kind} == unit-file ]]; then
    record[daemon_reload]=yes
  fi
  save_state_file original "${original_content}"
  save_state_file applied "${current}"
  save_program_copy
  save_record
  log "no record, but kubelet already uses ${effective_list}: adopted" \
    "(a revert sets ${original_list}); kubelet not restarted"
}

# delete: the original bytes back (or, if the file was edited since, only its cluster DNS value),
# kubelet restarted and checked; a failure puts the switched file back and keeps the record.
revert_node() {
  local current=
  local applied=
  local original=
  local current_list=
  if [[ -z ${record[phase]:-} ]]; then
    log "nothing recorded in ${STATE_DIR}: nothing to revert, kubelet not restarted"
    return 0
  fi
  if [[ ${record[node]} != "${NODE_NAME}" ]]; then
    log "note: this machine was switched as node ${record[node]}"
  fi
  check_recorded_source
  kubelet_running=no
  if ((kubelet_pid != 0)); then
    # The running kubelet must still take its cluster DNS from the recorded file: a record that
    # names another file (edited, or written by someone else) is not followed.
    detect_dns_source
    if [[ ${source_path} != "${record[source]}" ]]; then
      refuse "kubelet takes its cluster DNS from ${source_path:-nowhere} (${source_note})," \
        "but the switch recorded ${record[source]}; state left as it is, revert by hand"
    fi
  fi
  source_path=${record[source]}
  source_kind=${record[source_kind]}
  if [[ ! -e ${source_path} && ! -L ${source_path} ]]; then
    refuse "${source_path} is gone since the switch; its original is kept in ${STATE_DIR}/original"
  fi
  read_file_exact "${source_path}" current
  load_state_file applied applied
  locate_setting "${current}" "${source_kind}" "${source_path}"
  current_list=${setting_list}
  if [[ ${current} == "${applied}" ]]; then
    log "${source_path} is as the switch left it: putting back the original"
    if [[ ${record[original_exists]} == yes ]]; then
      load_state_file original original
      new_content=${original}
    fi
  elif ((setting_count == 1)) && [[ ${current_list} == "${record[applied_value]}" ]]; then
    log "${source_path} was edited since the switch:" \
      "setting only its cluster DNS back to ${record[original_value]}"
    if [[ ${record[original_exists]} == yes ]]; then
      replace_setting "${current}" "${record[original_value]}" new_content
    fi
  else
    log "cluster DNS in ${source_path} is ${current_list:-unset} since the switch" \
      "(this program set ${record[applied_value]}): changed by someone else;" \
      "leaving it alone, kubelet not restarted"
    record=()
    remove_state_files
    return 0
  fi
  if [[ ${record[original_exists]} == yes ]]; then
    begin_step delete new_content "${record[original_value]}"
  else
    begin_step delete "" "${record[original_value]}"
  fi
  commit_step
  log "reverted: cluster DNS ${record[applied_value]} -> ${record[original_value]}" \
    "in ${source_path} at ${step_done_at}"
  finish_revert_step
}

# check: what create would do, changing nothing (no lock, no state, no restart).
check_node() {
  local intended
  if prepare_state_dir && [[ -e ${STATE_DIR}/record ]]; then
    read_record
    log "check: record: ${record[phase]} (${record[source]}," \
      "${record[original_value]} -> ${record[applied_value]:-${record[after_value]:-?}})"
    if [[ ${record[phase]} != switched ]]; then
      log "check: a ${record[step]} was interrupted; the next run undoes it first"
    fi
  else
    log "check: no record in ${STATE_DIR}"
  fi
  detect_dns_source
  if [[ ${kubelet_running} == yes ]]; then
    read_kubelet_health_endpoint
    if ((healthz_port == 0)); then
      log "check: kubelet running (pid ${kubelet_pid}), healthz disabled"
    elif kubelet_healthz_ok "${healthz_address}" "${healthz_port}"; then
      log "check: kubelet running (pid ${kubelet_pid}), healthz ok"
    else
      log "check: kubelet running (pid ${kubelet_pid})," \
        "healthz NOT ok on ${healthz_address}:${healthz_port}"
    fi
  fi
  log "check: cluster DNS ${effective_list:-none}: ${source_note}"
  if probe_cache; then
    log "check: ${dns_probe_result}"
  else
    log "check: cache not ready: ${dns_probe_result}"
  fi
  if [[ ${kubelet_running} != yes ]]; then
    refuse "check: create would refuse: kubelet is not running"
  fi
  if [[ -n ${record[phase]:-} ]]; then
    intended_list_for "${record[original_value]}"
    intended=${intended_list}
    if [[ ${effective_list} == "${intended}" ]]; then
      log "check: create would do nothing: already switched"
      return 0
    fi
    if [[ ${effective_list} == "${record[applied_value]}" ||
      ${effective_list} == "${record[original_value]}" ]]; then
      refuse_long_list "${intended}"
      log "check: create would switch ${effective_list} -> ${intended}" \
        "in ${source_path} (${source_kind}) and restart kubelet"
      return 0
    fi
  elif list_contains "${effective_list}" "${LOCAL_DNS_IP}"; then
    log "check: create would adopt the switch already there (no restart)"
    return 0
  elif list_contains "${effective_list}" "${CLUSTER_DNS_IP}"; then
    intended_list_for "${effective_list}"
    intended=${intended_list}
    refuse_long_list "${intended}"
    log "check: create would switch ${effective_list} -> ${intended}" \
      "in ${source_path} (${source_kind}) and restart kubelet"
    return 0
  fi
  refuse "check: create would refuse: kubelet's cluster DNS ${effective_list:-none}" \
    "does not hold clusterDnsIp ${CLUSTER_DNS_IP}"
}
