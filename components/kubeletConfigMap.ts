// kubeadm's kube-system/kubelet-config ConfigMap: its `kubelet` key holds the KubeletConfiguration
// document that `kubeadm join` and `kubeadm upgrade node` write to each node. These pure
// functions edit only the text of its top-level `clusterDNS` field and put the exact original
// text back on revert; every other byte of the document, including edits made by others in the
// meantime, stays as it is. Shapes this editor does not understand are refused, never guessed.

export const KUBELET_CONFIG_MAP = {
  namespace: "kube-system",
  name: "kubelet-config",
  key: "kubelet",
} as const;

/**
 * The annotation that keeps the original clusterDNS text on the ConfigMap itself, written in the
 * same update as our value: a create re-run after a lost state record still finds the original.
 */
export const ORIGINAL_ANNOTATION = "node-local-dns.pulumi/original-cluster-dns";

export class KubeletConfigTextError extends Error {}

/** Where the top-level clusterDNS field lies in the document text, and what it lists. */
export interface ClusterDnsField {
  /** Offset of the key's line. */
  start: number;
  /** Offset just past the field's last line (its newline included). */
  end: number;
  values: string[];
  /** `[a, b]` on the key's line, or one `- a` line per value with this indentation. */
  style: { flow: true } | { flow: false; itemPrefix: string };
}

const KEY = "clusterDNS";
const KEY_LINE = /^clusterDNS[ \t]*:[ \t]*(.*)$/;
const ITEM_LINE = /^([ \t]*-[ \t]+)(.*)$/;
const COMMENT = /^[ \t]*(#.*)?$/;
// What an address in a list may look like once unquoted: digits, hex, dots and colons.
const ADDRESS = /^[0-9A-Fa-f.:]+$/;

interface Line {
  text: string;
  start: number;
  /** Offset past the line, its newline included. */
  end: number;
}

function linesOf(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf("\n", start);
    const end = newline < 0 ? text.length : newline + 1;
    lines.push({ text: text.slice(start, newline < 0 ? end : newline), start, end });
    start = end;
  }
  return lines;
}

/** A scalar without its quotes and trailing comment; refused when it is not an address. */
function address(raw: string): string {
  const bare = raw.replace(/[ \t]+#.*$/, "").trim();
  const unquoted = /^(["'])(.*)\1$/.exec(bare)?.[2] ?? bare;
  if (!ADDRESS.test(unquoted)) {
    throw new KubeletConfigTextError(`${KEY}: cannot read the entry ${JSON.stringify(bare)}`);
  }
  return unquoted;
}

/**
 * The top-level clusterDNS field of a KubeletConfiguration document's text, or undefined when the
 * document has none. Refused (KubeletConfigTextError): the key twice, a key that is not a block
 * mapping's top-level key (JSON, nested), a value other than a one-line flow list, a block list of
 * addresses, `[]`, `null` or `~`.
 */
export function findClusterDns(text: string): ClusterDnsField | undefined {
  const lines = linesOf(text);
  const keyLines = lines
    .map((line, i) => [line, i] as const)
    .filter(([l]) => KEY_LINE.test(l.text));
  if (keyLines.length > 1) {
    throw new KubeletConfigTextError(`${KEY}: the document has the key more than once`);
  }
  if (keyLines.length === 0) {
    // Mentioned outside a comment, but not as a top-level key: JSON, or nested somewhere.
    if (lines.some((line) => line.text.includes(KEY) && !/^[ \t]*#/.test(line.text))) {
      throw new KubeletConfigTextError(`${KEY}: not a top-level key of a YAML block mapping`);
    }
    return undefined;
  }
  const [keyLine, index] = keyLines[0]!;
  const rest = KEY_LINE.exec(keyLine.text)![1]!
    .replace(/(^|[ \t]+)#.*$/, "")
    .trim();
  if (rest.startsWith("[")) {
    if (!rest.endsWith("]")) throw new KubeletConfigTextError(`${KEY}: a flow list over lines`);
    const inner = rest.slice(1, -1).trim();
    const values = inner === "" ? [] : inner.split(",").map(address);
    return { start: keyLine.start, end: keyLine.end, values, style: { flow: true } };
  }
  if (rest === "null" || rest === "~") {
    return { start: keyLine.start, end: keyLine.end, values: [], style: { flow: true } };
  }
  if (rest !== "") throw new KubeletConfigTextError(`${KEY}: not a list`);
  // A block list: the lines after the key that are items, indented, or comments; it ends at the
  // next line that starts at column 0 with anything else (the next key, `---`, `...`).
  const values: string[] = [];
  let itemPrefix: string | undefined;
  let end = keyLine.end;
  for (const line of lines.slice(index + 1)) {
    const item = ITEM_LINE.exec(line.text);
    if (item !== null) {
      itemPrefix ??= item[1]!;
      values.push(address(item[2]!));
      end = line.end;
    } else if (COMMENT.test(line.text) && !/^[^ \t]/.test(line.text)) {
      continue;
    } else if (/^[ \t]/.test(line.text)) {
      throw new KubeletConfigTextError(`${KEY}: an entry that is not \`- <address>\``);
    } else {
      break;
    }
  }
  if (itemPrefix === undefined) throw new KubeletConfigTextError(`${KEY}: no value`);
  return { start: keyLine.start, end, values, style: { flow: false, itemPrefix } };
}

export interface CacheAddresses {
  localDnsIp: string;
  clusterDnsIp: string;
  fallbackToKubeDns: boolean;
}

/**
 * The list nodes get, from the list the document had before us, by the node program's rule: the
 * kube-dns entry becomes the cache's address (then kube-dns, with fallbackToKubeDns), the other
 * entries stay. An empty list becomes the cache's address alone. Refused: a list without kube-dns
 * (nothing of ours to replace), and one that already has the cache's address while no original is
 * known (the revert would have nothing to put back).
 */
export function intendedClusterDns(original: string[], addresses: CacheAddresses): string[] {
  const { localDnsIp, clusterDnsIp, fallbackToKubeDns } = addresses;
  const ours = fallbackToKubeDns ? [localDnsIp, clusterDnsIp] : [localDnsIp];
  const shown = `[${original.join(", ")}]`;
  if (original.includes(localDnsIp)) {
    throw new KubeletConfigTextError(
      `${KEY}: ${shown} already lists localDnsIp ${localDnsIp} and no original is kept: put kube-dns's address back first`,
    );
  }
  if (original.length === 0) return ours;
  if (!original.includes(clusterDnsIp)) {
    throw new KubeletConfigTextError(
      `${KEY}: ${shown} does not list clusterDnsIp ${clusterDnsIp}, the entry the cache replaces`,
    );
  }
  return original.flatMap((entry) => (entry === clusterDnsIp ? ours : [entry]));
}

/** The field's text for these values, in the style of the field it replaces. */
export function renderClusterDns(values: string[], style: ClusterDnsField["style"]): string {
  if (style.flow) return `${KEY}: [${values.join(", ")}]\n`;
  return `${KEY}:\n${values.map((value) => `${style.itemPrefix}${value}\n`).join("")}`;
}

export interface ClusterDnsChange {
  text: string;
  /** The field's exact text before, or "" when the document had none. */
  original: string;
}

/**
 * The document with clusterDNS set to `values`, and the field's exact text before. A document
 * without the field gets it in kubeadm's (sorted) key order: before the first top-level key that
 * sorts after it (`kind` always does).
 */
export function setClusterDns(text: string, values: string[]): ClusterDnsChange {
  const field = findClusterDns(text);
  if (field !== undefined) {
    // A last line without a newline keeps having none.
    const rendered = renderClusterDns(values, field.style);
    const replacement =
      text.endsWith("\n") || field.end < text.length ? rendered : rendered.slice(0, -1);
    return {
      text: text.slice(0, field.start) + replacement + text.slice(field.end),
      original: text.slice(field.start, field.end),
    };
  }
  const next = linesOf(text).find((line) => {
    const key = /^([A-Za-z][A-Za-z0-9]*)[ \t]*:/.exec(line.text)?.[1];
    return key !== undefined && key > KEY;
  });
  if (next === undefined) {
    throw new KubeletConfigTextError(`${KEY}: absent, and no top-level key to put it before`);
  }
  const rendered = renderClusterDns(values, { flow: false, itemPrefix: "- " });
  return { text: text.slice(0, next.start) + rendered + text.slice(next.start), original: "" };
}

export type ClusterDnsRestore =
  { restored: true; text: string } | { restored: false; reason: string };

/**
 * The document with the original clusterDNS text back, when the field still lists what we set.
 * Otherwise nothing changes, and the reason says what is there now: someone else set it since,
 * and their value stays.
 */
export function restoreClusterDns(
  text: string,
  applied: string[],
  original: string,
): ClusterDnsRestore {
  const field = findClusterDns(text);
  if (field === undefined) return { restored: false, reason: `${KEY} was removed since` };
  if (field.values.join(",") !== applied.join(",")) {
    return { restored: false, reason: `${KEY} is [${field.values.join(", ")}] now, not ours` };
  }
  // Our field was the last line without a newline: so was the original.
  const lastWithoutNewline = field.end === text.length && !text.endsWith("\n");
  const replacement =
    lastWithoutNewline && original.endsWith("\n") ? original.slice(0, -1) : original;
  return { restored: true, text: text.slice(0, field.start) + replacement + text.slice(field.end) };
}

/** The original kept in our annotation (undefined: none); refused when we did not write it. */
export function keptOriginal(annotation: string | undefined): string | undefined {
  if (annotation === undefined) return undefined;
  let original: unknown;
  try {
    original = (JSON.parse(annotation) as { clusterDNS?: unknown }).clusterDNS;
  } catch {
    original = undefined;
  }
  if (typeof original !== "string" || (original !== "" && findClusterDns(original) === undefined)) {
    throw new KubeletConfigTextError(
      `the annotation ${ORIGINAL_ANNOTATION} is not as this program writes it`,
    );
  }
  return original;
}

/** The annotation's value for an original field text. */
export function keptAnnotation(original: string): string {
  return JSON.stringify({ clusterDNS: original });
}

export interface KubeletConfigEdit {
  /** The document as `up` writes it. */
  text: string;
  /** The field's text before our first change ("" when there was none), and what it listed. */
  original: string;
  originalClusterDns: string[];
  /** What the field lists after the edit. */
  clusterDns: string[];
}

/**
 * What `up` (and `render`) makes of the `kubelet` document: `known` is the original from an
 * earlier change (our annotation, else the stack's state); without one, the field as it is now.
 */
export function planKubeletConfigEdit(
  text: string,
  known: string | undefined,
  addresses: CacheAddresses,
): KubeletConfigEdit {
  const field = findClusterDns(text);
  const original = known ?? (field === undefined ? "" : text.slice(field.start, field.end));
  const originalClusterDns = original === "" ? [] : findClusterDns(original)!.values;
  const clusterDns = intendedClusterDns(originalClusterDns, addresses);
  return { text: setClusterDns(text, clusterDns).text, original, originalClusterDns, clusterDns };
}
