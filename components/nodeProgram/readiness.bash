# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# Is the cache ready? It answers a real DNS query.
#
# A DNS query over TCP (RFC 1035 4.2.2: a 2-byte length, then the message) to LOCAL_DNS_IP:53 for
# kubernetes.default.svc.<cluster domain>, type A. Ready means a reply with our query ID, the
# response bit set, and NOERROR or NXDOMAIN: the cache and, behind it, kube-dns answer. A port that
# accepts connections but does not speak DNS, or a SERVFAIL (kube-dns unreachable), is not ready.
# Bash and coreutils only (bash's /dev/tcp, od): nodes have no dig.
# ------------------------------------------------------------------------------------------------

# The last readiness probe's outcome, for messages.
dns_probe_result=

# Sets dns_query_format to a printf format that writes the query (with its TCP length prefix): $1
# the ID, $2 the name. (printf -v, not $( ): no process of its own.)
dns_query_format=
build_dns_query_format() {
  local id=$1
  local name=$2
  local label
  local label_length
  local question=
  local length
  local -a labels=()
  IFS=. read -r -a labels <<<"${name}"
  for label in "${labels[@]}"; do
    printf -v label_length '\\x%02x' "${#label}"
    question+=${label_length}${label}
  done
  # Root label, QTYPE A (1), QCLASS IN (1).
  question+='\x00\x00\x01\x00\x01'
  # 12 header bytes + the labels (a length byte each, plus their text) + 5 bytes above.
  length=$((12 + ${#name} + 1 + 5))
  # Header: ID, flags 0x0100 (recursion desired), QDCOUNT 1, ANCOUNT/NSCOUNT/ARCOUNT 0.
  printf -v dns_query_format \
    '\\x%02x\\x%02x\\x%02x\\x%02x\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00%s' \
    $((length >> 8)) $((length & 255)) $((id >> 8)) $((id & 255)) "${question}"
}

# Sends one query to LOCAL_DNS_IP:53 and sets dns_probe_result; true when the cache answered.
probe_cache() {
  local id=$((RANDOM))
  local name=kubernetes.default.svc.${CLUSTER_DOMAIN}
  local reply
  local -a bytes=()
  build_dns_query_format "${id}" "${name}"
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  reply=$(timeout -k 1 3 bash -c '
    exec 3<>"/dev/tcp/$1/53" || exit 1
    printf "$2" >&3
    head -c 6 <&3' _ "${LOCAL_DNS_IP}" "${dns_query_format}" 2>/dev/null | od -An -v -tu1) || true
  read -r -a bytes <<<"${reply}"
  if ((${#bytes[@]} < 6)); then
    dns_probe_result="no DNS reply from ${LOCAL_DNS_IP}:53"
    return 1
  fi
  # bytes: length (2), ID (2), flags (2): QR is the top bit of the first flag byte, RCODE the low
  # four bits of the second.
  if ((bytes[2] * 256 + bytes[3] != id || (bytes[4] & 128) == 0)); then
    dns_probe_result="${LOCAL_DNS_IP}:53 answered, but not with a DNS reply to our query"
    return 1
  fi
  case $((bytes[5] & 15)) in
    0)
      dns_probe_result="the cache answers on ${LOCAL_DNS_IP}:53 (${name}: NOERROR)"
      return 0
      ;;
    3)
      dns_probe_result="the cache answers on ${LOCAL_DNS_IP}:53 (${name}: NXDOMAIN)"
      return 0
      ;;
    *)
      dns_probe_result="the cache on ${LOCAL_DNS_IP}:53 answers with error code $((bytes[5] & 15))"
      dns_probe_result+=" (2: SERVFAIL, kube-dns unreachable?)"
      return 1
      ;;
  esac
}

# "yes" once wait_for_cache had to wait: the cache did not answer its first query.
cache_waited=no

# Waits up to READY_TIMEOUT_SECONDS for the cache, telling the client every few seconds (which
# also notices a client that went away: see ensure_client_connected).
wait_for_cache() {
  local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
  local next_report=$((SECONDS + 5))
  while ! probe_cache; do
    cache_waited=yes
    if ((SECONDS >= deadline)); then
      refuse "the cache is not ready after ${READY_TIMEOUT_SECONDS}s: ${dns_probe_result};" \
        "kubelet left unchanged"
    fi
    if ((SECONDS >= next_report)); then
      ensure_client_connected \
        "waiting for the cache: ${dns_probe_result} ($((deadline - SECONDS))s left)"
      next_report=$((SECONDS + 5))
    fi
    sleep 1
  done
  log "${dns_probe_result}"
}
