// Syntax checks for addresses and names. Pure and strict: whatever passes here may later be put in
// a shell script or a Kubernetes object.
import { isIPv4, isIPv6 } from "node:net";

export function isIp(value: string): boolean {
  return isIPv4(value) || isIPv6(value);
}

export { isIPv4, isIPv6 };

/** IPv6 in its canonical text form (lower case, zeros compressed), as `ip addr` prints it. */
export function canonicalIp(value: string): string {
  return isIPv6(value) ? new URL(`http://[${value}]/`).hostname.slice(1, -1) : value;
}

/** 169.254.0.0/16, the range upstream recommends for the node-local address. */
export function isLinkLocalIPv4(value: string): boolean {
  return isIPv4(value) && value.startsWith("169.254.");
}

const DNS_LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";

/** RFC 1123 DNS label, as Kubernetes Service names require (lower case). */
export function isDnsLabel(value: string): boolean {
  return new RegExp(`^${DNS_LABEL}$`).test(value);
}

/** Lower-case DNS name of dot-separated RFC 1123 labels, at most 253 characters, no trailing dot. */
export function isDnsName(value: string): boolean {
  return value.length <= 253 && new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`).test(value);
}

/** A host to dial: an IP address or a DNS name (any case). */
export function isHost(value: string): boolean {
  return isIp(value) || isDnsName(value.toLowerCase());
}
