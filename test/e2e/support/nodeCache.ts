// NodeLocal DNSCache on a systemd test node, the way the DaemonSet's pod runs it, from what the
// API server holds (the ConfigMap's Corefile, the DaemonSet's container args, the
// kube-dns-upstream ClusterIP), with a kube-dns stand-in behind it inside the same node, so every
// DNS packet stays in the node's own network namespace:
//
// - startKubeDns(node, {ip: "10.96.0.10", binaryPath}): the kube-dns ClusterIP on the node's lo
//   and CoreDNS (through the node-cache stand-in) bound to it alone, answering cluster names and
//   a few "external" ones (example.test), logging what it is asked;
// - startNodeCache(node, {corefile, args, kubeDnsUpstreamIp, binaryPath}): the node-cache
//   stand-in as a transient unit in the node, args verbatim plus -setupinterface=false
//   -setupiptables=false, KUBE_DNS_UPSTREAM_SERVICE_HOST set, /etc/resolv.conf pointing at the
//   kube-dns stand-in (so __PILLAR__UPSTREAM__SERVERS__ forwards there, never out);
// - dnsQuery(node, server, name, type): one query from inside the node, rcode and answers.
//
// Both start functions return handles whose stop() is idempotent and undoes what they changed;
// the units die with the node in any case. The parts are in nodeCache/: cache.ts, kubeDns.ts,
// dnsQuery.ts (+ dns-query.py), units.ts (binary, systemd-run, readiness).

export {
  flagValue,
  serviceHostEnv,
  startNodeCache,
  type NodeCache,
  type NodeCacheOptions,
} from "./nodeCache/cache";
export {
  dnsQuery,
  type DnsQueryOptions,
  type DnsRecord,
  type DnsResult,
  type DnsType,
} from "./nodeCache/dnsQuery";
export {
  kubeDnsCorefile,
  startKubeDns,
  type KubeDns,
  type KubeDnsOptions,
} from "./nodeCache/kubeDns";
export { NODE_CACHE_BINARY } from "./nodeCache/units";
