// What node-cache 1.26 leaves on a node when it exits with -skipteardown (or is killed): its
// iptables rules for the cache address and its `nodelocaldns` link holding that address. Shared by
// the cleanup's test and the end-to-end destroy, which put them on a node the way node-cache does.

/**
 * The rules node-cache makes for one address (cmd/node-cache/app/cache_app.go, initIptables), as
 * `iptables -I` arguments: NOTRACK in raw and ACCEPT in filter for DNS over UDP and TCP both ways,
 * and NOTRACK for its health port.
 */
export function nodeCacheRules(ip: string, healthPort: number): string[] {
  const skip = `-m comment --comment "NodeLocal DNS Cache: skip conntrack"`;
  const allow = `-m comment --comment "NodeLocal DNS Cache: allow DNS traffic"`;
  const rules: string[] = [];
  for (const proto of ["tcp", "udp"]) {
    rules.push(
      `-t raw -I PREROUTING -p ${proto} -d ${ip} --dport 53 -j NOTRACK ${skip}`,
      `-t filter -I INPUT -p ${proto} -d ${ip} --dport 53 -j ACCEPT ${allow}`,
      `-t raw -I OUTPUT -p ${proto} -s ${ip} --sport 53 -j NOTRACK ${skip}`,
      `-t filter -I OUTPUT -p ${proto} -s ${ip} --sport 53 -j ACCEPT ${allow}`,
      `-t raw -I OUTPUT -p ${proto} -d ${ip} --dport 53 -j NOTRACK ${skip}`,
    );
  }
  rules.push(
    `-t raw -I OUTPUT -p tcp -d ${ip} --dport ${healthPort} -j NOTRACK ${skip}`,
    `-t raw -I OUTPUT -p tcp -s ${ip} --sport ${healthPort} -j NOTRACK ${skip}`,
  );
  return rules;
}

/** Bash that adds the rules with one iptables variant. */
export function addRulesScript(variant: "legacy" | "nft", rules: readonly string[]): string {
  return rules.map((rule) => `iptables-${variant} -w ${rule}`).join("\n");
}

/**
 * Bash that makes node-cache's link with the address. The test kernel may have no dummy driver, so
 * it is a bridge: node-cache takes a link of that name as it is, and so does the cleanup.
 */
export function linkScript(ip: string): string {
  return `ip link add nodelocaldns type bridge\nip addr add ${ip}/32 dev nodelocaldns`;
}
