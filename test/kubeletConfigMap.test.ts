// The clusterDNS edit of kubeadm's kube-system/kubelet-config (components/kubeletConfigMap.ts):
// only the field's text changes, and the revert gives back the exact original bytes, keeping
// what others changed meanwhile. The fixture is the `kubelet` key as kubeadm (1.32 and later)
// writes it: keys sorted, lists as `- ` at column 0.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  findClusterDns,
  intendedClusterDns,
  KubeletConfigTextError,
  restoreClusterDns,
  setClusterDns,
} from "../components/kubeletConfigMap";

const KUBEADM = fs.readFileSync(
  path.join(__dirname, "fixtures", "kubeadm-kubelet-config.yaml"),
  "utf8",
);
const CACHE = ["169.254.20.10"];

/** The document with one line replaced by others (or removed). */
function replaceLine(text: string, line: string, ...by: string[]): string {
  assert.ok(text.includes(`\n${line}\n`), line);
  return text.replace(`\n${line}\n`, `\n${[...by, ""].join("\n")}`);
}

const ROUND_TRIPS: { name: string; text: string; set: string[]; expected: string }[] = [
  {
    name: "kubeadm's document: the one entry",
    text: KUBEADM,
    set: CACHE,
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10"),
  },
  {
    name: "fallbackToKubeDns: two entries",
    text: KUBEADM,
    set: ["169.254.20.10", "10.96.0.10"],
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10", "- 10.96.0.10"),
  },
  {
    name: "dual stack: two entries become one",
    text: replaceLine(KUBEADM, "- 10.96.0.10", "- 10.96.0.10", "- fd00::10"),
    set: CACHE,
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10"),
  },
  {
    name: "indented, quoted entries with a comment: the indentation is kept",
    text: replaceLine(KUBEADM, "- 10.96.0.10", '  - "10.96.0.10" # kube-dns', "  # more later"),
    set: CACHE,
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "  - 169.254.20.10", "  # more later"),
  },
  {
    name: "a comment after the key: the field's text, comment included, is replaced and restored",
    text: replaceLine(KUBEADM, "clusterDNS:", "clusterDNS: # set by kubeadm"),
    set: CACHE,
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10"),
  },
  {
    name: "a flow list stays a flow list",
    text: replaceLine(KUBEADM, "clusterDNS:", "clusterDNS: ['10.96.0.10']").replace(
      "\n- 10.96.0.10\n",
      "\n",
    ),
    set: CACHE,
    expected: replaceLine(KUBEADM, "clusterDNS:", "clusterDNS: [169.254.20.10]").replace(
      "\n- 10.96.0.10\n",
      "\n",
    ),
  },
  {
    name: "null: a flow list",
    text: replaceLine(KUBEADM, "clusterDNS:", "clusterDNS: null").replace("\n- 10.96.0.10\n", "\n"),
    set: CACHE,
    expected: replaceLine(KUBEADM, "clusterDNS:", "clusterDNS: [169.254.20.10]").replace(
      "\n- 10.96.0.10\n",
      "\n",
    ),
  },
  {
    name: "absent: inserted in kubeadm's key order, before clusterDomain",
    text: KUBEADM.replace("clusterDNS:\n- 10.96.0.10\n", ""),
    set: CACHE,
    expected: replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10"),
  },
  {
    name: "absent, with a comment that names it: inserted",
    text: `# clusterDNS: set by the platform\n${KUBEADM.replace("clusterDNS:\n- 10.96.0.10\n", "")}`,
    set: CACHE,
    expected: `# clusterDNS: set by the platform\n${replaceLine(KUBEADM, "- 10.96.0.10", "- 169.254.20.10")}`,
  },
  {
    name: "the last line, without a newline: still without one",
    text: "kind: KubeletConfiguration\nclusterDNS:\n- 10.96.0.10",
    set: CACHE,
    expected: "kind: KubeletConfiguration\nclusterDNS:\n- 169.254.20.10",
  },
];

describe("setClusterDns and restoreClusterDns", () => {
  for (const { name, text, set, expected } of ROUND_TRIPS) {
    it(`${name}: only the field changes, and the revert gives the original bytes back`, () => {
      const change = setClusterDns(text, set);
      assert.equal(change.text, expected);
      assert.deepEqual(findClusterDns(change.text)?.values, set);
      const restore = restoreClusterDns(change.text, set, change.original);
      assert.deepEqual(restore, { restored: true, text });
    });
  }

  it("keeps the original text and what it listed", () => {
    const change = setClusterDns(KUBEADM, CACHE);
    assert.equal(change.original, "clusterDNS:\n- 10.96.0.10\n");
    assert.equal(setClusterDns(change.text, CACHE).text, change.text, "a second set: no change");
    const absent = setClusterDns(KUBEADM.replace("clusterDNS:\n- 10.96.0.10\n", ""), CACHE);
    assert.equal(absent.original, "");
  });

  it("keeps what others changed in the document meanwhile", () => {
    const change = setClusterDns(KUBEADM, CACHE);
    const edited = replaceLine(
      change.text,
      "cgroupDriver: systemd",
      "cgroupDriver: cgroupfs",
    ).replace("kind: KubeletConfiguration\n", "kind: KubeletConfiguration\nmaxPods: 250\n");
    const restore = restoreClusterDns(edited, CACHE, change.original);
    assert.deepEqual(restore, {
      restored: true,
      text: replaceLine(KUBEADM, "cgroupDriver: systemd", "cgroupDriver: cgroupfs").replace(
        "kind: KubeletConfiguration\n",
        "kind: KubeletConfiguration\nmaxPods: 250\n",
      ),
    });
  });

  it("leaves a value someone else set since, and says what is there", () => {
    const change = setClusterDns(KUBEADM, CACHE);
    const theirs = replaceLine(change.text, "- 169.254.20.10", "- 10.96.0.53");
    assert.deepEqual(restoreClusterDns(theirs, CACHE, change.original), {
      restored: false,
      reason: "clusterDNS is [10.96.0.53] now, not ours",
    });
    const removed = change.text.replace("clusterDNS:\n- 169.254.20.10\n", "");
    assert.deepEqual(restoreClusterDns(removed, CACHE, change.original), {
      restored: false,
      reason: "clusterDNS was removed since",
    });
  });
});

describe("findClusterDns refuses what it does not understand, naming the problem", () => {
  const refusals: [string, string, RegExp][] = [
    ["the key twice", `${KUBEADM}clusterDNS:\n- 10.0.0.10\n`, /more than once/],
    ["JSON", '{"kind":"KubeletConfiguration","clusterDNS":["10.96.0.10"]}', /not a top-level key/],
    ["nested", "kind: KubeletConfiguration\nextra:\n  clusterDNS:\n  - 10.0.0.1\n", /top-level/],
    ["a scalar", "clusterDNS: 10.96.0.10\nkind: KubeletConfiguration\n", /not a list/],
    ["a flow list over lines", "clusterDNS: [10.96.0.10,\n  fd00::10]\n", /over lines/],
    [
      "not an address",
      "clusterDNS:\n- $(reboot)\nkind: K\n",
      /cannot read the entry "\$\(reboot\)"/,
    ],
    ["a mapping entry", "clusterDNS:\n  ip: 10.96.0.10\nkind: K\n", /not `- <address>`/],
    ["no value", "clusterDNS:\nkind: K\n", /no value/],
    ["absent, nothing after it", "apiVersion: v1\n", /no top-level key to put it before/],
  ];
  for (const [name, text, message] of refusals) {
    it(name, () => {
      assert.throws(
        () => setClusterDns(text, CACHE),
        (err: Error) => err instanceof KubeletConfigTextError && message.test(err.message),
      );
    });
  }
});

describe("intendedClusterDns: the node program's rule", () => {
  const addresses = { localDnsIp: "169.254.20.10", clusterDnsIp: "10.96.0.10" };
  const table: [string[], boolean, string[]][] = [
    [["10.96.0.10"], false, ["169.254.20.10"]],
    [["10.96.0.10"], true, ["169.254.20.10", "10.96.0.10"]],
    [["10.96.0.10", "fd00::10"], false, ["169.254.20.10", "fd00::10"]],
    [["fd00::10", "10.96.0.10"], true, ["fd00::10", "169.254.20.10", "10.96.0.10"]],
    [[], false, ["169.254.20.10"]],
    [[], true, ["169.254.20.10", "10.96.0.10"]],
  ];
  for (const [original, fallbackToKubeDns, expected] of table) {
    it(`[${original.join(", ")}]${fallbackToKubeDns ? ", fallback" : ""} -> [${expected.join(", ")}]`, () => {
      assert.deepEqual(intendedClusterDns(original, { ...addresses, fallbackToKubeDns }), expected);
    });
  }

  it("refuses a list without kube-dns, and one that already has the cache", () => {
    assert.throws(
      () => intendedClusterDns(["10.0.0.53"], { ...addresses, fallbackToKubeDns: false }),
      /clusterDNS: \[10\.0\.0\.53\] does not list clusterDnsIp 10\.96\.0\.10/,
    );
    assert.throws(
      () => intendedClusterDns(["169.254.20.10"], { ...addresses, fallbackToKubeDns: false }),
      /already lists localDnsIp 169\.254\.20\.10 and no original is kept/,
    );
  });
});
