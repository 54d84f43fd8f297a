// Reads OpenSSH known_hosts text (what `ssh-keyscan` prints for a fleet) so that each node's SSH
// host key can be pinned by host and port. Pure: no I/O, no global state.
//
// The command provider pins exactly one host key per connection, so every entry must name the hosts
// it is for. Hashed entries (`|1|salt|hash`, from `ssh-keyscan -H` or `ssh-keygen -H`) still name
// exactly one host each and can be checked against a given host, so they are supported. Wildcards,
// negations and @cert-authority describe sets of hosts or keys that cannot be turned into a single
// pin, so they are refused with a message saying so rather than silently ignored.
import { createHmac } from "node:crypto";

/** Most preferred first: the order in which knownHostKey picks among a host's keys. */
const KEY_TYPES = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
] as const;

type KeyType = (typeof KEY_TYPES)[number];

const SSH_PORT = 22;
const HASH_MAGIC = "|1|";
const SHA1_BYTES = 20;

type HostMatcher =
  | { readonly kind: "name"; readonly name: string; readonly port: number }
  | { readonly kind: "hashed"; readonly salt: Buffer; readonly hash: Buffer };

interface KnownHostEntry {
  readonly hosts: readonly HostMatcher[];
  readonly keyType: KeyType;
  readonly keyBase64: string;
}

export interface KnownHosts {
  readonly entries: readonly KnownHostEntry[];
}

/** A line's problem, without the line number (added by the caller). */
class LineProblem extends Error {}

/**
 * Parse known_hosts text. problems: one message per bad line, each "line N: <problem>" (never echo
 * the line's text or a key: values may be long). All bad lines reported at once.
 */
export function parseKnownHosts(text: string): { knownHosts: KnownHosts; problems: string[] } {
  const entries: KnownHostEntry[] = [];
  const problems: string[] = [];
  text
    .replace(/^\uFEFF/, "")
    .split("\n")
    .forEach((rawLine, index) => {
      const line = rawLine.replace(/\r$/, "").trim();
      if (line === "" || line.startsWith("#")) return;
      try {
        entries.push(parseEntry(line));
      } catch (error) {
        if (!(error instanceof LineProblem)) throw error;
        problems.push(`line ${index + 1}: ${error.message}`);
      }
    });
  return { knownHosts: { entries }, problems };
}

/**
 * The host key to pin for host:port, in authorized_keys form "<type> <base64>" (no comment), or
 * undefined.
 */
export function knownHostKey(
  knownHosts: KnownHosts,
  host: string,
  port: number,
): string | undefined {
  const name = host.toLowerCase();
  let best: KnownHostEntry | undefined;
  for (const entry of knownHosts.entries) {
    if (!entry.hosts.some((matcher) => matches(matcher, name, port))) continue;
    // Strictly better only, so that within one type the first in the file wins.
    if (best === undefined || preference(entry.keyType) < preference(best.keyType)) best = entry;
  }
  return best && `${best.keyType} ${best.keyBase64}`;
}

function parseEntry(line: string): KnownHostEntry {
  const fields = line.split(/[ \t]+/);
  checkMarker(fields[0]);
  if (fields.length < 3) {
    throw new LineProblem("expected host patterns, a key type and a base64 key");
  }
  const [patterns, keyType, keyBase64] = fields;
  const hosts = patterns.split(",").map(parseHostPattern);
  const type = parseKeyType(keyType);
  checkKeyBlob(type, keyBase64);
  return { hosts, keyType: type, keyBase64 };
}

function checkMarker(firstField: string): void {
  if (firstField === "@cert-authority") {
    throw new LineProblem(
      "@cert-authority: a CA cannot be pinned as a host key; list the hosts' own keys",
    );
  }
  if (firstField === "@revoked") throw new LineProblem("@revoked entries are not supported");
  if (firstField.startsWith("@")) throw new LineProblem("unknown @ marker");
}

function parseHostPattern(pattern: string): HostMatcher {
  if (pattern.startsWith("|")) return parseHashedHost(pattern);
  if (/[*?]/.test(pattern) || pattern.startsWith("!")) {
    throw new LineProblem("host pattern wildcards and negations are not supported: list each host");
  }
  const bracketed = /^\[([^[\]]+)\]:([0-9]{1,5})$/.exec(pattern);
  if (bracketed) {
    const port = Number(bracketed[2]);
    if (port < 1 || port > 65535) throw new LineProblem("host pattern has a port out of range");
    return { kind: "name", name: bracketed[1].toLowerCase(), port };
  }
  // An empty name or a stray bracket would never match a host, and most likely is a typo.
  if (pattern === "" || /[[\]]/.test(pattern)) {
    throw new LineProblem("malformed host pattern: expected a name, an address or [host]:port");
  }
  return { kind: "name", name: pattern.toLowerCase(), port: SSH_PORT };
}

function parseHashedHost(pattern: string): HostMatcher {
  const parts = pattern.startsWith(HASH_MAGIC) ? pattern.slice(HASH_MAGIC.length).split("|") : [];
  const [salt, hash] = parts.map(decodeBase64);
  if (parts.length !== 2 || salt?.length !== SHA1_BYTES || hash?.length !== SHA1_BYTES) {
    throw new LineProblem("malformed hashed host");
  }
  return { kind: "hashed", salt, hash };
}

function parseKeyType(keyType: string): KeyType {
  const known = KEY_TYPES.find((type) => type === keyType);
  // The type is not echoed: on a garbled line it may be any part of a key.
  if (!known) throw new LineProblem(`unknown key type; expected one of ${KEY_TYPES.join(", ")}`);
  return known;
}

/** The blob must be the SSH wire encoding of a key of the stated type, which starts with the type. */
function checkKeyBlob(keyType: KeyType, keyBase64: string): void {
  const blob = decodeBase64(keyBase64);
  if (!blob) throw new LineProblem("the key is not valid base64");
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const blobType = typeLength >= 0 ? blob.subarray(4, 4 + typeLength).toString("latin1") : "";
  if (blobType !== keyType || blob.length === 4 + typeLength) {
    throw new LineProblem(`the key's blob is not a ${keyType} key`);
  }
}

/** Strict base64 (Node's decoder skips bad characters silently), or undefined. */
function decodeBase64(value: string): Buffer | undefined {
  const wellFormed = /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0;
  return wellFormed && value !== "" ? Buffer.from(value, "base64") : undefined;
}

function matches(matcher: HostMatcher, name: string, port: number): boolean {
  if (matcher.kind === "name") return matcher.name === name && matcher.port === port;
  // OpenSSH hashes the bare name for port 22 and "[host]:port" otherwise, never "[host]:22".
  const lookupName = port === SSH_PORT ? name : `[${name}]:${port}`;
  const digest = createHmac("sha1", matcher.salt).update(lookupName).digest();
  return digest.equals(matcher.hash);
}

function preference(keyType: KeyType): number {
  return KEY_TYPES.indexOf(keyType);
}

/** A pinned key, else the one known_hosts has for host:port, else the fleet-wide default. */
export function pinnedKey(
  pinned: string | undefined,
  knownHosts: KnownHosts | undefined,
  host: string | undefined,
  port: number,
  fallback: string | undefined,
): string | undefined {
  if (pinned !== undefined) return pinned;
  const known = knownHosts && host ? knownHostKey(knownHosts, host, port) : undefined;
  return known ?? fallback;
}
