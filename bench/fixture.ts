// The benchmark's cluster: N nodes with realistic connection data (pinned host keys, one SSH
// private key held as a secret), as plain data. Imports nothing from components/, so the SDK-floor
// worker can use the same node names, hosts and keys without loading any of our code.
import { createHash } from "node:crypto";

export const PROJECT = "nodelocaldns";
export const CLUSTER_DNS_IP = "10.96.0.10";
export const LOCAL_DNS_IP = "169.254.20.10";
export const SSH_USER = "ops";

/** Shaped like an OpenSSH ed25519 private key (387 bytes, as ssh-keygen writes); not a real key. */
export const PRIVATE_KEY = fakePrivateKey();

export function nodeName(i: number): string {
  return `node-${String(i + 1).padStart(4, "0")}`;
}

export function nodeHost(i: number): string {
  return `10.${20 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

/** A pinned ed25519 host key per node: the right length, distinct per node, not a real key. */
export function nodeHostKey(i: number): string {
  const body = Buffer.concat([
    Buffer.from("0000000b7373682d65643235353139", "hex"), // "ssh-ed25519" length-prefixed
    Buffer.from("00000020", "hex"),
    createHash("sha256").update(`host-key-${i}`).digest(),
  ]);
  return `ssh-ed25519 ${body.toString("base64")}`;
}

export interface BenchNode {
  name: string;
  host: string;
  hostKey: string;
}

export function benchNodes(count: number): BenchNode[] {
  return Array.from({ length: count }, (_, i) => ({
    name: nodeName(i),
    host: nodeHost(i),
    hostKey: nodeHostKey(i),
  }));
}

export interface EngineConfig {
  /** `nodelocaldns:<key>` -> value as the engine passes it (structured values as JSON text). */
  config: Record<string, string>;
  secretKeys: string[];
}

/**
 * Stack config for N nodes as the Pulumi engine hands it to the program: the project defaults of
 * Pulumi.yaml, and the structured keys as JSON text; `ssh` holds the private key, so it is secret.
 */
export function engineConfig(count: number, batchSize = 5): EngineConfig {
  const key = (k: string) => `${PROJECT}:${k}`;
  return {
    config: {
      [key("clusterDnsIp")]: CLUSTER_DNS_IP,
      [key("dnsServiceName")]: "kube-dns",
      [key("localDnsIp")]: LOCAL_DNS_IP,
      [key("clusterDomain")]: "cluster.local",
      [key("kubeProxyMode")]: "ipvs",
      [key("image")]: "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8",
      [key("healthPort")]: "9254",
      [key("metricsPort")]: "9253",
      [key("priorityClassName")]: "system-node-critical",
      [key("stateDir")]: "/var/lib/nodelocaldns",
      [key("ssh")]: JSON.stringify({ user: SSH_USER, sudo: true, privateKey: PRIVATE_KEY }),
      [key("kubelet")]: JSON.stringify({ format: "auto" }),
      [key("rollout")]: JSON.stringify({
        batchSize,
        readyTimeoutSeconds: 120,
        kubeletTimeoutSeconds: 60,
      }),
      [key("nodes")]: JSON.stringify(benchNodes(count)),
    },
    secretKeys: [key("ssh")],
  };
}

function fakePrivateKey(): string {
  const body = Buffer.alloc(234);
  for (let i = 0; i < body.length; i++) body[i] = (i * 37 + 11) % 256;
  const b64 = body.toString("base64");
  const lines = b64.match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
