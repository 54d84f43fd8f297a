// The node-cache Corefile for a cluster whose kube-proxy runs in IPVS mode. Same zones and
// directives as the upstream addon (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml), with every
// value filled in here except `__PILLAR__UPSTREAM__SERVERS__`, which node-cache fills at run time
// from the kube-dns ConfigMap or /etc/resolv.conf.
//
// IPVS differences from upstream: kube-proxy's IPVS interface already holds the kube-dns ClusterIP,
// so every `bind` holds only the link-local IP (upstream's `__PILLAR__DNS__SERVER__` is dropped),
// and the cluster zones forward straight to the kube-dns ClusterIP.

import { ResolvedSettings } from "./settings";

/** The one placeholder left in the Corefile; node-cache replaces it when it writes /etc/Corefile. */
export const UPSTREAM_SERVERS_PLACEHOLDER = "__PILLAR__UPSTREAM__SERVERS__";

const INDENT = "    ";

/** `host:port`, with an IPv6 host in brackets (`[fd00::10]:8080`). */
function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One server block: `<zone>:53 {`, the directives indented by one level, `}`. */
function serverBlock(zone: string, directives: string[]): string {
  const body = directives
    .join("\n")
    .split("\n")
    .map((line) => INDENT + line);
  return [`${zone}:53 {`, ...body, "}"].join("\n");
}

/** A directive with a nested block: `<head> {`, the lines indented by one level, `}`. */
function nested(head: string, lines: string[]): string {
  return [`${head} {`, ...lines.map((line) => INDENT + line), "}"].join("\n");
}

export function renderCorefile(s: ResolvedSettings): string {
  const bind = `bind ${s.localDnsIp}`;
  const prometheus = `prometheus :${s.metricsPort}`;
  const forwardToCluster = nested(`forward . ${s.clusterDnsIp}`, ["force_tcp"]);
  const reverseZone = (zone: string): string =>
    serverBlock(zone, [
      "errors",
      `cache ${s.cache.ttl}`,
      "reload",
      "loop",
      bind,
      forwardToCluster,
      prometheus,
    ]);

  const blocks = [
    serverBlock(s.clusterDomain, [
      "errors",
      nested("cache", [
        `success ${s.cache.successSize} ${s.cache.successTtl}`,
        `denial ${s.cache.denialSize} ${s.cache.denialTtl}`,
      ]),
      "reload",
      "loop",
      bind,
      forwardToCluster,
      prometheus,
      `health ${hostPort(s.localDnsIp, s.healthPort)}`,
    ]),
    reverseZone("in-addr.arpa"),
    reverseZone("ip6.arpa"),
    serverBlock(".", [
      "errors",
      `cache ${s.cache.ttl}`,
      "reload",
      "loop",
      bind,
      `forward . ${UPSTREAM_SERVERS_PLACEHOLDER}`,
      prometheus,
    ]),
  ];
  return blocks.join("\n") + "\n";
}
