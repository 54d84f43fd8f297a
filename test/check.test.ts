// The check CLI (cli/check.ts, cli/check/*): a read-only dry run of the node program on every node
// before `pulumi up`.
// - Without nodes: parsing `pulumi config --json`, the ssh command (keys, pinned and unpinned host
//   keys, bastion, sudo), reading the program's check lines and ssh's failures, the summary, and
//   the CLI itself against a stand-in `pulumi` and `ssh` (usage, bad config, temp files, secrets).
// - On systemd test nodes reached over real OpenSSH on 127.0.0.x (sshForward), with a stack made
//   by the real Pulumi CLI: one node that would switch, one already switched, one refused layout;
//   the lines say so, exit status 1, nothing on the nodes changes, the private key is never
//   printed; and a wrong pinned host key is reported as such.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../cli/check";
import {
  allWouldSucceed,
  describeSshFailure,
  formatNodeLine,
  formatSummary,
  summariseCheckRun,
  type CheckRun,
  type SshTarget,
} from "../cli/check/checkOutput";
import { mapWithLimit } from "../cli/check/fleet";
import { engineConfigFromPulumiJson, settingsFromEngineConfig } from "../cli/check/pulumiConfig";
import { Redactor } from "../cli/check/redact";
import { acceptedHostKey, knownHostsName, nodeSshCommand } from "../cli/check/sshCommand";
import { ConfigError, parseSettings } from "../components/config";
import type { NodeSettings } from "../components/settings";
import { rawConfigFromEngine } from "../components/stackConfig";
import { REFUSED_LAYOUTS, SUPPORTED_LAYOUTS } from "./support/kubeletLayouts";
import { KUBELET_UNIT, LOCAL_DNS_IP, ProgramNode } from "./support/programNode";
import { startSystemdNode, systemdNodeTestOptions } from "./support/systemdNode";

const ROOT = path.join(__dirname, "..");
const CLI = path.join(ROOT, "cli", "check.ts");
const temp: string[] = [];
after(() => temp.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-check-test-"));
  temp.push(dir);
  return dir;
}

/** A key-shaped secret: its text must never show up in any output. */
const FAKE_KEY = [
  "-----BEGIN OPENSSH PRIVATE KEY-----",
  "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
  "QyNTUxOQAAACBsZWFrZWQtaWYtcHJpbnRlZC1hbnl3aGVyZS1hdC1hbGwAAAAAAAAAAAAA",
  "-----END OPENSSH PRIVATE KEY-----",
].join("\n");
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJ2xpy4xm8dQvJpNWIR2Urp3wbnUn7fV1dmIJr1E7Aa";

/** What `pulumi config --json --show-secrets` prints for `values` (secret: the keys in `secret`). */
function pulumiJson(values: Record<string, unknown>, secret: string[] = []): string {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const full = `nodelocaldns:${key}`;
    const entry: Record<string, unknown> = {
      value: typeof value === "string" ? value : JSON.stringify(value),
      secret: secret.includes(key),
    };
    if (typeof value !== "string") entry.objectValue = value;
    out[full] = entry;
  }
  return JSON.stringify(out, null, 2);
}

const NODE: NodeSettings = {
  name: "node-1",
  host: "10.0.0.11",
  port: 22,
  user: "root",
  sudo: true,
  kubelet: { format: "auto" },
};

describe("pulumi config --json -> the engine's config", () => {
  it("takes each value as the engine hands it, structured keys as JSON text", () => {
    const config = engineConfigFromPulumiJson(
      pulumiJson(
        {
          clusterDnsIp: "10.96.0.10",
          healthPort: "8080",
          nodes: [{ name: "node-1", host: "10.0.0.11", port: 2222 }],
          ssh: { privateKey: FAKE_KEY, sudo: false },
        },
        ["ssh"],
      ),
    );
    assert.equal(config.values["nodelocaldns:healthPort"], "8080");
    assert.equal(
      config.values["nodelocaldns:nodes"],
      '[{"name":"node-1","host":"10.0.0.11","port":2222}]',
    );
    assert.deepEqual([...config.secretKeys], ["nodelocaldns:ssh"]);
    const { settings } = settingsFromEngineConfig(config, undefined);
    assert.equal(settings.nodes[0]!.port, 2222);
    assert.equal(settings.nodes[0]!.privateKey, FAKE_KEY);
    assert.equal(settings.nodes[0]!.sudo, false);
  });

  it("refuses output it cannot use, naming keys but never values", () => {
    assert.throws(() => engineConfigFromPulumiJson("warning: x\n{"), /is not JSON/);
    assert.throws(() => engineConfigFromPulumiJson("[]"), /no object of keys/);
    const undecrypted = JSON.stringify({ "nodelocaldns:ssh": { secret: true } });
    assert.throws(
      () => engineConfigFromPulumiJson(undecrypted),
      /no value for secret nodelocaldns:ssh \(not decrypted\?\)/,
    );
  });

  it("bad config: the very message list `pulumi up` gives", () => {
    const values = {
      clusterDnsIp: "10.96.0.300",
      ssh: { privateKey: FAKE_KEY, port: 0 },
      nodes: [{ name: "Node_1", host: "10.0.0.11" }],
    };
    const config = engineConfigFromPulumiJson(pulumiJson(values));
    let fromCheck: unknown;
    try {
      settingsFromEngineConfig(config, undefined);
    } catch (error) {
      fromCheck = error;
    }
    assert.ok(fromCheck instanceof ConfigError);
    const engine = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [
        `nodelocaldns:${k}`,
        typeof v === "string" ? v : JSON.stringify(v),
      ]),
    );
    assert.throws(
      () => parseSettings(rawConfigFromEngine(engine, () => false)),
      (error: Error) => error.message === fromCheck.message,
    );
    assert.match(fromCheck.message, /nodelocaldns:ssh\.privateKey: is not stored as a secret/);
    assert.doesNotMatch(fromCheck.message, /b3BlbnNzaC1rZXkt/);
  });

  it("--cluster-dns-ip stands in for an unset clusterDnsIp and may not contradict a set one", () => {
    const unset = engineConfigFromPulumiJson(pulumiJson({}));
    assert.equal(settingsFromEngineConfig(unset, "10.96.0.10").settings.clusterDnsIp, "10.96.0.10");
    const set = engineConfigFromPulumiJson(pulumiJson({ clusterDnsIp: "10.96.0.10" }));
    assert.throws(() => settingsFromEngineConfig(set, "10.96.0.11"), /contradicts/);
  });
});

/** The value of `-o Name=value` in an ssh argv. */
function option(args: string[], name: string): string | undefined {
  const values = args
    .filter((a, i) => args[i - 1] === "-o" && a.startsWith(`${name}=`))
    .map((a) => a.slice(name.length + 1));
  assert.ok(values.length <= 1, `${name} given ${values.length} times`);
  return values[0];
}

describe("the ssh command of a node's check", () => {
  const OPTIONS = { ssh: "ssh", connectTimeoutSeconds: 10 };

  it("root, a private key and a pinned host key: key file, known_hosts, strict checking", () => {
    const node = { ...NODE, port: 2222, privateKey: FAKE_KEY, hostKey: HOST_KEY };
    const cmd = nodeSshCommand(node, "/run/d", OPTIONS);
    assert.deepEqual(cmd.args.slice(0, 9), [
      "-F",
      "/dev/null",
      "-T",
      "-p",
      "2222",
      "-l",
      "root",
      "-i",
      "/run/d/node_id",
    ]);
    assert.deepEqual(cmd.args.slice(-2), ["10.0.0.11", "bash -s check"]);
    assert.equal(option(cmd.args, "StrictHostKeyChecking"), "yes");
    assert.equal(option(cmd.args, "UserKnownHostsFile"), "/run/d/node_known_hosts");
    assert.equal(option(cmd.args, "GlobalKnownHostsFile"), "/dev/null");
    assert.equal(option(cmd.args, "BatchMode"), "yes");
    assert.equal(option(cmd.args, "ConnectTimeout"), "10");
    assert.equal(option(cmd.args, "IdentitiesOnly"), "yes");
    assert.equal(option(cmd.args, "ProxyCommand"), undefined);
    assert.deepEqual(cmd.files, [
      { path: "/run/d/node_known_hosts", content: `[10.0.0.11]:2222 ${HOST_KEY}\n` },
      { path: "/run/d/node_id", content: `${FAKE_KEY}\n` },
    ]);
    assert.deepEqual(cmd.acceptedHostKeys, {});
    assert.ok(!cmd.args.join(" ").includes("b3BlbnNzaC1rZXkt"), "the key only in its file");
  });

  it("another user: exactly the command `pulumi up` runs (sudo -n); no key: the agent", () => {
    const cmd = nodeSshCommand({ ...NODE, user: "ops" }, "/run/d", OPTIONS);
    assert.equal(cmd.args.at(-1), "sudo -n bash -s check");
    assert.ok(!cmd.args.includes("-i"));
    assert.equal(option(cmd.args, "IdentityAgent"), undefined);
    const noSudo = nodeSshCommand({ ...NODE, user: "ops", sudo: false }, "/run/d", OPTIONS);
    assert.equal(noSudo.args.at(-1), "bash -s check");
  });

  it("an unpinned host key: accept-new into a throwaway known_hosts, read back afterwards", () => {
    const cmd = nodeSshCommand(NODE, "/run/d", OPTIONS);
    assert.equal(option(cmd.args, "StrictHostKeyChecking"), "accept-new");
    assert.deepEqual(cmd.files, [{ path: "/run/d/node_known_hosts", content: "" }]);
    assert.deepEqual(cmd.acceptedHostKeys, { node: "/run/d/node_known_hosts" });
  });

  it("a bastion: a ProxyCommand with the bastion's own key, host key and user", () => {
    const node: NodeSettings = {
      ...NODE,
      hostKey: HOST_KEY,
      proxy: {
        host: "bastion.example.com",
        port: 22,
        user: "jump",
        privateKey: "BASTION-KEY-TEXT",
        hostKey: "ssh-ed25519 AAAAbastion",
      },
    };
    const cmd = nodeSshCommand(node, "/tmp/100%/d", OPTIONS);
    const proxy = option(cmd.args, "ProxyCommand")!;
    assert.equal(
      proxy,
      "ssh -F /dev/null -T -p 22 -l jump -i /tmp/100%%/d/bastion_id" +
        " -o BatchMode=yes -o StrictHostKeyChecking=yes" +
        " -o UserKnownHostsFile=/tmp/100%%/d/bastion_known_hosts -o GlobalKnownHostsFile=/dev/null" +
        " -o HashKnownHosts=no -o CheckHostIP=no -o UpdateHostKeys=no" +
        " -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o ControlMaster=no" +
        " -o ControlPath=none -o ForwardAgent=no -o ForwardX11=no -o ClearAllForwardings=yes" +
        " -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o LogLevel=ERROR" +
        " -o IdentitiesOnly=yes -o IdentityAgent=none" +
        " -W %h:%p bastion.example.com 2>/tmp/100%%/d/bastion_stderr",
    );
    assert.deepEqual(
      cmd.files.map((f) => [f.path, f.content]),
      [
        ["/tmp/100%/d/node_known_hosts", `10.0.0.11 ${HOST_KEY}\n`],
        ["/tmp/100%/d/bastion_known_hosts", "bastion.example.com ssh-ed25519 AAAAbastion\n"],
        ["/tmp/100%/d/bastion_id", "BASTION-KEY-TEXT\n"],
      ],
    );
    assert.equal(cmd.bastionStderr, "/tmp/100%/d/bastion_stderr");
    assert.ok(!proxy.includes("BASTION-KEY-TEXT"));
  });

  it("names hosts in known_hosts as ssh looks them up", () => {
    assert.equal(knownHostsName("Node-1.Example.COM", 22), "node-1.example.com");
    assert.equal(knownHostsName("10.0.0.11", 2222), "[10.0.0.11]:2222");
    assert.equal(knownHostsName("fd00::11", 2222), "[fd00::11]:2222");
  });

  it("an accepted host key: its SHA256 fingerprint as ssh-keygen -l shows it", (t) => {
    const dir = tempDir();
    const keygen = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/k`]);
    if (keygen.error !== undefined || keygen.status !== 0) return t.skip("no ssh-keygen");
    const publicKey = fs.readFileSync(`${dir}/k.pub`, "utf8").trim();
    const listed = spawnSync("ssh-keygen", ["-l", "-f", `${dir}/k.pub`], { encoding: "utf8" });
    const fingerprint = listed.stdout.split(" ")[1];
    assert.equal(acceptedHostKey(`[127.0.0.5]:2222 ${publicKey}\n`), `ssh-ed25519 ${fingerprint}`);
    assert.equal(acceptedHostKey(""), undefined);
  });
});

/** A check run's output as the node program prints it for node `n`. */
function lines(...texts: string[]): string {
  return texts.map((t) => `nodelocaldns[n]: ${t}\n`).join("");
}

const TARGET: SshTarget = { endpoint: "127.0.0.5:2222", user: "root", hostKeyPinned: true };
const SWITCH_RUN: CheckRun = {
  code: 0,
  stdout: lines(
    "check",
    "check: no record in /var/lib/nodelocaldns",
    "check: kubelet running (pid 312), healthz ok",
    "check: cluster DNS 10.96.0.10: clusterDNS in /var/lib/kubelet/config.yaml",
    "check: the cache answers on 169.254.20.10:53 (kubernetes.default.svc.cluster.local: NOERROR)",
    "check: create would switch 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml (config-file) and restart kubelet",
  ),
  stderr: "",
};

describe("reading a check run", () => {
  it("would switch: the verdict, then what is there, the cache, kubelet", () => {
    const check = summariseCheckRun("n", SWITCH_RUN, TARGET);
    assert.equal(check.verdict, "switch");
    assert.equal(
      formatNodeLine("n", check),
      "n: would switch 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml (config-file) and restart kubelet; " +
        "cluster DNS 10.96.0.10 (clusterDNS in /var/lib/kubelet/config.yaml); cache answers (NOERROR); kubelet healthz ok",
    );
  });

  it("already switched, adopt, and a cache that does not answer", () => {
    const already = summariseCheckRun(
      "n",
      {
        code: 0,
        stdout: lines(
          "check: record: switched (/etc/kubernetes/kubelet, 10.96.0.10 -> 169.254.20.10)",
          "check: kubelet running (pid 9), healthz disabled",
          "check: cluster DNS 169.254.20.10: --cluster-dns flag from /etc/kubernetes/kubelet (env-file)",
          "check: cache not ready: no DNS reply from 169.254.20.10:53",
          "check: create would do nothing: already switched",
        ),
        stderr: "",
      },
      TARGET,
    );
    assert.equal(
      formatNodeLine("n", already, ["node host key not pinned"]),
      "n: already switched: create would do nothing; " +
        "cluster DNS 169.254.20.10 (--cluster-dns flag from /etc/kubernetes/kubelet (env-file)); " +
        "cache NOT ready: no DNS reply from 169.254.20.10:53; kubelet healthz disabled; node host key not pinned",
    );
    const adopt = summariseCheckRun(
      "n",
      {
        code: 0,
        stdout: lines("check: create would adopt the switch already there (no restart)"),
        stderr: "",
      },
      TARGET,
    );
    assert.deepEqual(adopt, {
      verdict: "adopt",
      detail: "would adopt the switch already there (no restart)",
      facts: [],
    });
  });

  it("refusals: the program's reason, without its fixed words", () => {
    const refused = (stderr: string, stdout = "") =>
      summariseCheckRun("n", { code: 1, stdout: lines(...stdout.split("|")), stderr }, TARGET);
    const other = refused(
      lines(
        "error: check: create would refuse: kubelet's cluster DNS 10.43.0.10 does not hold clusterDnsIp 10.96.0.10; nothing changed",
      ),
      "check: kubelet running (pid 7), healthz NOT ok on 127.0.0.1:10248|check: cluster DNS 10.43.0.10: clusterDNS in /var/lib/kubelet/config.yaml",
    );
    assert.equal(other.verdict, "fail");
    assert.equal(
      formatNodeLine("n", other),
      "n: would FAIL: kubelet's cluster DNS 10.43.0.10 does not hold clusterDnsIp 10.96.0.10; " +
        "cluster DNS 10.43.0.10 (clusterDNS in /var/lib/kubelet/config.yaml); kubelet healthz NOT ok on 127.0.0.1:10248",
    );
    const early = refused(
      lines("error: kubelet has --cluster-dns 2 times; nothing changed"),
      "check",
    );
    assert.equal(early.detail, "would FAIL: kubelet has --cluster-dns 2 times");
    assert.deepEqual(early.facts, []);
    const stopped = refused(
      lines("error: check: create would refuse: kubelet is not running; nothing changed"),
    );
    assert.equal(stopped.detail, "would FAIL: kubelet is not running");
  });

  it("lines of another node and a run without a verdict do not pass", () => {
    const noVerdict = summariseCheckRun(
      "n",
      {
        code: 0,
        stdout: `${lines("check")}nodelocaldns[m]: check: create would do nothing: already switched\n`,
        stderr: "",
      },
      TARGET,
    );
    assert.equal(noVerdict.verdict, "fail");
    assert.match(noVerdict.detail, /without a verdict/);
    const killed = summariseCheckRun(
      "n",
      { code: null, stdout: lines("check"), stderr: "" },
      TARGET,
    );
    assert.equal(killed.verdict, "fail");
  });

  it("ssh and sudo failures: could not be checked, and why", () => {
    const failed = (stderr: string, code = 255, target = TARGET) =>
      summariseCheckRun("n", { code, stdout: "", stderr }, target);
    const changed =
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n" +
      "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n" +
      "Host key for [127.0.0.5]:2222 has changed and you have requested strict checking.\n" +
      "Host key verification failed.\n";
    assert.deepEqual(failed(changed), {
      verdict: "unchecked",
      detail: "the host key of 127.0.0.5:2222 did not match the pinned hostKey",
      facts: [],
    });
    assert.equal(
      failed(
        "No ED25519 host key is known for [127.0.0.5]:2222 and you have requested strict checking.\nHost key verification failed.\n",
      ).detail,
      "the host key of 127.0.0.5:2222 did not match the pinned hostKey",
    );
    assert.equal(
      failed("root@127.0.0.5: Permission denied (publickey).\n").detail,
      "root@127.0.0.5:2222 refused the login (publickey)",
    );
    assert.equal(
      failed("ssh: connect to host 127.0.0.5 port 2222: Connection refused\n").detail,
      "cannot connect to 127.0.0.5:2222: Connection refused",
    );
    assert.equal(
      failed(
        'Load key "/tmp/x/node_id": invalid format\nroot@127.0.0.5: Permission denied (publickey).\n',
      ).detail,
      "the private key could not be loaded (invalid format)",
    );
    assert.equal(
      failed("sudo: a password is required\n", 1, { ...TARGET, user: "ops" }).detail,
      "sudo -n failed for ops: a password is required",
    );
    assert.equal(failed("", 255).detail, "ssh failed without a message");
    assert.equal(
      failed("bash: line 1: bash: command not found\n", 127).detail,
      "the command failed (exit 127): bash: line 1: bash: command not found",
    );
    assert.equal(
      summariseCheckRun(
        "n",
        { code: null, stdout: lines("check"), stderr: "", timedOutAfterSeconds: 60 },
        TARGET,
      ).detail,
      "no result within 60s (ssh stopped)",
    );
  });

  it("a bastion's failure is the bastion's, from its own messages", () => {
    const target: SshTarget = {
      ...TARGET,
      bastion: { endpoint: "bastion.example.com:22", user: "jump", hostKeyPinned: true },
    };
    const check = summariseCheckRun(
      "n",
      {
        code: 255,
        stdout: "",
        stderr: "kex_exchange_identification: Connection closed by remote host\n",
        bastionStderr: "Host key verification failed.\n",
      },
      target,
    );
    assert.equal(
      check.detail,
      "bastion: the host key of bastion.example.com:22 did not match the pinned hostKey",
    );
    assert.equal(
      describeSshFailure("kex_exchange_identification: Connection closed by remote host\n", TARGET),
      "ssh: kex_exchange_identification: Connection closed by remote host",
    );
  });

  it("the summary counts each verdict; only switch, adopt and already switched pass", () => {
    assert.equal(
      formatSummary([...Array(10).fill("switch"), "already", "fail"]),
      "checked 12 nodes: 10 would switch, 1 already switched, 1 would fail",
    );
    assert.equal(formatSummary(["unchecked"]), "checked 1 node: 1 could not be checked");
    assert.equal(formatSummary([]), "checked 0 nodes");
    assert.ok(allWouldSucceed(["switch", "adopt", "already"]));
    assert.ok(!allWouldSucceed(["switch", "unchecked"]));
    assert.ok(!allWouldSucceed(["fail"]));
  });
});

describe("helpers", () => {
  it("the Redactor masks a secret and each of its lines", () => {
    const r = new Redactor();
    r.add(FAKE_KEY);
    r.add("short");
    r.add(undefined);
    const line = FAKE_KEY.split("\n")[1]!;
    assert.equal(r.apply(`a ${line} b`), "a [secret] b");
    assert.equal(r.apply(`x ${FAKE_KEY} y`), "x [secret] y");
    assert.equal(r.apply("short"), "short");
  });

  it("mapWithLimit: the bound, the order, and no new task after a failure", async () => {
    let running = 0;
    let most = 0;
    const results = await mapWithLimit([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, n * 5));
      running--;
      return n * 10;
    });
    assert.deepEqual(results, [50, 10, 40, 20, 30]);
    assert.equal(most, 2);
    const started: number[] = [];
    await assert.rejects(
      mapWithLimit([1, 2, 3, 4], 1, async (n) => {
        started.push(n);
        if (n === 2) throw new Error("boom");
        return n;
      }),
      /boom/,
    );
    assert.deepEqual(started, [1, 2]);
  });
});

/** Runs main() with console output captured and TMPDIR pointing at `tmp`. */
async function runMain(argv: string[], tmp = tempDir()) {
  const log = console.log;
  const error = console.error;
  const saved = process.env.TMPDIR;
  let stdout = "";
  let stderr = "";
  console.log = (...args: unknown[]) => void (stdout += args.join(" ") + "\n");
  console.error = (...args: unknown[]) => void (stderr += args.join(" ") + "\n");
  process.env.TMPDIR = tmp;
  try {
    return { code: await main(argv), stdout, stderr, tmp };
  } finally {
    console.log = log;
    console.error = error;
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** A stand-in `pulumi` that prints `json` (or fails with `error`), and records its arguments. */
function fakePulumi(json: string, error?: string): { file: string; argsFile: string } {
  const dir = tempDir();
  const file = path.join(dir, "pulumi");
  const argsFile = path.join(dir, "args");
  fs.writeFileSync(path.join(dir, "config.json"), json);
  fs.writeFileSync(
    file,
    `#!/bin/bash\nprintf '%s\\n' "$PWD" "$@" >${argsFile}\n` +
      (error === undefined
        ? `cat ${dir}/config.json\n`
        : `printf 'error: %s\\n' ${JSON.stringify(error)} >&2\nexit 1\n`),
    { mode: 0o755 },
  );
  return { file, argsFile };
}

/** A stand-in `ssh` that records the mode and content of its -i file, then fails as ssh does. */
function fakeSsh(): { file: string; record: string } {
  const dir = tempDir();
  const file = path.join(dir, "ssh");
  const record = path.join(dir, "record");
  fs.writeFileSync(
    file,
    `#!/bin/bash
while (($#)); do
  if [[ $1 == -i ]]; then stat -c '%a %n' "$2" >>${record}; cat "$2" >>${record}; fi
  shift
done
cat >/dev/null
echo 'root@127.0.0.1: Permission denied (publickey).' >&2
exit 255
`,
    { mode: 0o755 },
  );
  return { file, record };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe("the CLI, with stand-ins for pulumi and ssh", () => {
  it("--help, and an unknown flag or no --stack is a usage error", async () => {
    const help = await runMain(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: npm run check -- --stack <name>/);
    const unknown = await runMain(["--stack", "s", "--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^check: Unknown option '--bogus'/);
    assert.match(unknown.stderr, /usage: /);
    assert.equal((await runMain([])).code, 2);
    assert.match((await runMain(["--stack", "s", "--parallel", "0"])).stderr, /--parallel must/);
  });

  it("asks pulumi for the decrypted config of the stack, in the project dir", async () => {
    const pulumi = fakePulumi(pulumiJson({ clusterDnsIp: "10.96.0.10" }));
    const project = tempDir();
    const r = await runMain(["--stack", "prod", "--pulumi", pulumi.file, "--project-dir", project]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "checked 0 nodes\n");
    assert.deepEqual(fs.readFileSync(pulumi.argsFile, "utf8").trim().split("\n"), [
      project,
      "config",
      "--json",
      "--show-secrets",
      "--non-interactive",
      "--stack",
      "prod",
    ]);
  });

  it("bad config, a failing pulumi, no clusterDnsIp: exit 1, the reason, no secret", async () => {
    const bad = fakePulumi(
      pulumiJson({ clusterDnsIp: "nope", ssh: { privateKey: FAKE_KEY, user: "Bad User" } }, [
        "ssh",
      ]),
    );
    const r = await runMain(["--stack", "s", "--pulumi", bad.file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^invalid nodelocaldns configuration \(2 problems\):\n/);
    assert.match(r.stderr, /nodelocaldns:clusterDnsIp: "nope" is not an IP address/);
    assert.match(r.stderr, /nodelocaldns:ssh\.user: a secret value is not a user name/);
    const failing = fakePulumi("", "incorrect passphrase");
    const f = await runMain(["--stack", "s", "--pulumi", failing.file]);
    assert.equal(f.code, 1);
    assert.equal(f.stderr, "check: pulumi config --stack s failed: incorrect passphrase\n");
    const noIp = fakePulumi(pulumiJson({}));
    const n = await runMain(["--stack", "s", "--pulumi", noIp.file]);
    assert.equal(n.code, 1);
    assert.match(n.stderr, /set nodelocaldns:clusterDnsIp or pass --cluster-dns-ip <ip>/);
    const missing = await runMain(["--stack", "s", "--pulumi", "/nonexistent/pulumi"]);
    assert.match(missing.stderr, /cannot run \/nonexistent\/pulumi \(ENOENT\)/);
    for (const out of [r, f, n]) assert.ok(!(out.stdout + out.stderr).includes("b3BlbnNzaC1r"));
  });

  it("hands ssh the private key in a 0600 file that is gone afterwards", async () => {
    const pulumi = fakePulumi(
      pulumiJson(
        {
          clusterDnsIp: "10.96.0.10",
          ssh: { privateKey: FAKE_KEY },
          nodes: [{ name: "node-1", host: "127.0.0.1", hostKey: HOST_KEY }],
        },
        ["ssh"],
      ),
    );
    const ssh = fakeSsh();
    const r = await runMain(["--stack", "s", "--pulumi", pulumi.file, "--ssh", ssh.file]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      "node-1: root@127.0.0.1:22 refused the login (publickey)\n" +
        "checked 1 node: 1 could not be checked\n",
    );
    const [mode, ...content] = fs.readFileSync(ssh.record, "utf8").split("\n");
    assert.match(mode!, /^600 .*\/nodelocaldns-check-[^/]+\/node-0\/node_id$/);
    assert.equal(content.join("\n"), `${FAKE_KEY}\n`);
    assert.ok(!fs.existsSync(mode!.split(" ")[1]!));
    assert.deepEqual(fs.readdirSync(r.tmp), [], "the run's temp dir is removed");
    assert.ok(!(r.stdout + r.stderr).includes("b3BlbnNzaC1r"));
  });

  it("real ssh, nothing listening: the node could not be checked, in config order", async () => {
    const [a, b] = [await freePort("127.0.0.1"), await freePort("127.0.0.1")];
    const pulumi = fakePulumi(
      pulumiJson({
        clusterDnsIp: "10.96.0.10",
        nodes: [
          { name: "node-b", host: "127.0.0.1", port: b },
          { name: "node-a", host: "127.0.0.1", port: a, hostKey: HOST_KEY },
          {
            name: "node-c",
            host: "10.0.0.13",
            proxy: { host: "127.0.0.1", port: a, hostKey: HOST_KEY },
          },
        ],
      }),
    );
    const r = await runMain(["--stack", "s", "--pulumi", pulumi.file, "--parallel", "2"]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      `node-b: cannot connect to 127.0.0.1:${b}: Connection refused; node host key not pinned\n` +
        `node-a: cannot connect to 127.0.0.1:${a}: Connection refused\n` +
        `node-c: bastion: cannot connect to 127.0.0.1:${a}: Connection refused; node host key not pinned\n` +
        "checked 3 nodes: 3 could not be checked\n",
    );
    assert.match(r.stderr, /^warning: nodelocaldns:nodes/);
    assert.deepEqual(fs.readdirSync(r.tmp), []);
  });
});

/** The Pulumi CLI: `pulumi` on PATH, else the one test/e2e/toolchain/build.sh built. */
function findPulumi(): { file?: string; reason?: string } {
  // Not node_modules/.bin/pulumi (npm puts it first on PATH): the pinned npm package downloads
  // its CLI on first use, and tests must not reach the network.
  const dirs = (process.env.PATH ?? "").split(":").filter((d) => !d.includes("node_modules"));
  for (const dir of dirs) {
    const file = path.join(dir, "pulumi");
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return { file };
    } catch {
      // not here
    }
  }
  const listed = spawnSync("bash", ["test/e2e/toolchain/build.sh", "--paths"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  const line = (listed.stdout ?? "").split("\n").find((l) => l.startsWith("pulumi\t"));
  if (line !== undefined) return { file: line.split("\t")[1]! };
  return {
    reason:
      "the Pulumi CLI is unavailable: no pulumi on PATH and none built " +
      "(bash test/e2e/toolchain/build.sh pulumi)",
  };
}

/** systemd test nodes and the Pulumi CLI: skipped without them, failed in CI (CI=true). */
function nodeTestOptions(): { options: { skip?: string }; pulumi?: string } {
  const nodes = systemdNodeTestOptions();
  if (nodes.skip !== undefined) return { options: nodes };
  const pulumi = findPulumi();
  if (pulumi.file !== undefined) return { options: {}, pulumi: pulumi.file };
  if (process.env.CI === "true") throw new Error(`required in CI: ${pulumi.reason}`);
  return { options: { skip: pulumi.reason } };
}

interface ExecOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, at most `timeoutMs` (then SIGKILL). */
function exec(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string; timeoutMs: number },
): Promise<ExecOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeoutMs,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

/** A project dir (this Pulumi.yaml) with a local backend and PULUMI_HOME of its own. */
class TestStack {
  readonly dir = tempDir();
  readonly project = path.join(this.dir, "project");
  readonly passphrase = `pp-${randomBytes(12).toString("hex")}`;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly pulumi: string,
    readonly name: string,
  ) {
    fs.mkdirSync(this.project);
    fs.mkdirSync(path.join(this.dir, "state"));
    fs.mkdirSync(path.join(this.dir, "tmp"));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(this.project, "Pulumi.yaml"));
    this.env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.dir,
      LANG: "C.UTF-8",
      TMPDIR: path.join(this.dir, "tmp"),
      PULUMI_HOME: path.join(this.dir, "home"),
      PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: this.passphrase,
      PULUMI_SKIP_UPDATE_CHECK: "true",
    };
  }

  async cli(args: string[], stdin?: string): Promise<void> {
    const r = await exec(this.pulumi, [...args, "--stack", this.name], {
      cwd: this.project,
      env: this.env,
      stdin,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `pulumi ${args.join(" ")}: ${r.stderr}`);
  }

  async set(key: string, value: string): Promise<void> {
    await this.cli(["config", "set", "--path", key, value]);
  }

  /** `npm run check -- --stack <name> ...` */
  check(...args: string[]): Promise<ExecOutput> {
    return exec(
      process.execPath,
      [
        "--import",
        "tsx",
        CLI,
        ...["--stack", this.name, "--project-dir", this.project, "--pulumi", this.pulumi],
        ...args,
      ],
      { cwd: ROOT, env: this.env, timeoutMs: 180_000 },
    );
  }
}

/** A node in `files`' layout with an answering cache, its sshd on `forward` of the host. */
async function startForwardedNode(
  files: Record<string, string>,
  forward: { address: string; port: number },
): Promise<ProgramNode> {
  const node = new ProgramNode(
    await startSystemdNode({
      files,
      enable: [KUBELET_UNIT],
      localDnsIp: LOCAL_DNS_IP,
      sshForward: forward,
    }),
  );
  try {
    await node.kubeletRunning();
    await node.setCache("dns");
    return node;
  } catch (error) {
    await node.stop();
    throw error;
  }
}

/** What check must not change: the layout's files, the state dir's files, kubelet's process. */
async function nodeState(n: ProgramNode, paths: string[]) {
  const state = (await n.state()) ?? [];
  const kubelet = await n.kubelet();
  return {
    files: n.snapshot([...paths, ...state.map((name) => `/var/lib/nodelocaldns/${name}`)]),
    state,
    kubelet: { active: kubelet.active, mainPid: kubelet.mainPid, starts: kubelet.starts },
  };
}

const nodeTests = nodeTestOptions();

describe("on systemd test nodes, with a stack the Pulumi CLI made", nodeTests.options, () => {
  const SWITCH = SUPPORTED_LAYOUTS[0]!;
  const DONE = SUPPORTED_LAYOUTS.find((l) => l.name.startsWith("TKE"))!;
  const REFUSED = REFUSED_LAYOUTS.find((l) => l.name.includes("both in /etc/default/kubelet"))!;
  const names = ["node-switch", "node-done", "node-refused"];
  const layouts = [SWITCH, DONE, REFUSED];
  const nodes: ProgramNode[] = [];
  const forwards: { address: string; port: number }[] = [];
  let stack: TestStack;
  let privateKey: string;

  before(
    async () => {
      // Three distinct 127.0.0.x addresses, each with a free port.
      const hosts = new Set<number>();
      while (hosts.size < 3) hosts.add(2 + Math.floor(Math.random() * 250));
      for (const host of hosts) {
        const address = `127.0.0.${host}`;
        forwards.push({ address, port: await freePort(address) });
      }
      const started = await Promise.allSettled(
        layouts.map((layout, i) => startForwardedNode(layout.files, forwards[i]!)),
      );
      for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
      const failed = started.find((s) => s.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      // One private key for the stack: node-switch's client key, authorized on the others too.
      privateKey = fs.readFileSync(nodes[0]!.node.privateKeyPath, "utf8");
      const publicKey = fs.readFileSync(`${nodes[0]!.node.privateKeyPath}.pub`, "utf8");
      for (const n of nodes.slice(1)) {
        const authorized = n.text("/root/.ssh/authorized_keys");
        n.node.writeFile("/root/.ssh/authorized_keys", `${authorized}${publicKey}`);
      }
      const done = await nodes[1]!.run("create", { params: { nodeName: "node-done" } });
      assert.equal(done.code, 0, done.stderr);

      stack = new TestStack(nodeTests.pulumi!, "check-test");
      await stack.cli(["stack", "init", "--non-interactive"]);
      await stack.cli(["config", "set", "clusterDnsIp", "10.96.0.10"]);
      await stack.set("rollout.readyTimeoutSeconds", "3");
      await stack.set("rollout.kubeletTimeoutSeconds", "15");
      await stack.cli(["config", "set", "--secret", "--path", "ssh.privateKey"], privateKey);
      for (const [i, name] of names.entries()) {
        await stack.set(`nodes[${i}].name`, name);
        await stack.set(`nodes[${i}].host`, forwards[i]!.address);
        await stack.set(`nodes[${i}].port`, String(forwards[i]!.port));
      }
      // node-switch as ops through sudo -n; node-done's host key left unpinned.
      await stack.set("nodes[0].user", "ops");
      await stack.set("nodes[0].hostKey", nodes[0]!.node.hostKey);
      await stack.set("nodes[2].hostKey", nodes[2]!.node.hostKey);
      const stackFile = fs.readFileSync(path.join(stack.project, "Pulumi.check-test.yaml"), "utf8");
      assert.ok(!stackFile.includes(privateKey.split("\n")[1]!), "the key is stored encrypted");
    },
    { timeout: 15 * 60_000 },
  );
  after(() => Promise.all(nodes.map((n) => n.stop())));

  /** Every way the key or the passphrase could show up in output. */
  function assertNoSecret(output: ExecOutput): void {
    const text = output.stdout + output.stderr;
    for (const piece of [privateKey, ...privateKey.split("\n").filter((l) => l.length >= 16)]) {
      assert.ok(!text.includes(piece), "the private key's text is printed");
    }
    assert.ok(!text.includes(stack.passphrase), "the passphrase is printed");
  }

  const endpointOf = (i: number) => `${forwards[i]!.address}:${forwards[i]!.port}`;

  it(
    "says what create would do on each node, exit 1, and changes nothing",
    { timeout: 180_000 },
    async () => {
      const paths = layouts.map((l) => Object.keys(l.files));
      const before = await Promise.all(nodes.map((n, i) => nodeState(n, paths[i]!)));
      const started = Date.now();
      const r = await stack.check("--parallel", "2");
      console.log(`# the check of 3 nodes took ${Date.now() - started} ms`);
      assert.equal(r.code, 1, r.stderr);
      const out = r.stdout.trimEnd().split("\n");
      assert.equal(out.length, 4, r.stdout);
      assert.equal(
        out[0],
        "node-switch: would switch 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml (config-file) and restart kubelet; " +
          "cluster DNS 10.96.0.10 (clusterDNS in /var/lib/kubelet/config.yaml); " +
          "cache answers (NOERROR); kubelet healthz ok",
      );
      const fingerprint = acceptedHostKey(`host ${nodes[1]!.node.hostKey}`)!;
      assert.equal(
        out[1],
        "node-done: already switched: create would do nothing; " +
          "cluster DNS 169.254.20.10 (--cluster-dns flag from /etc/kubernetes/kubelet (env-file)); " +
          `cache answers (NOERROR); kubelet healthz ok; node host key not pinned: accepted ${fingerprint}`,
      );
      assert.match(
        out[2]!,
        /^node-refused: would FAIL: kubelet runs with --cluster-dns=10\.96\.0\.10; --cluster-dns is set in: .*; cannot tell which one to edit \(set kubelet\.path\)$/,
      );
      assert.equal(out[3], "checked 3 nodes: 1 would switch, 1 already switched, 1 would fail");
      assert.match(r.stderr, /^warning: nodelocaldns:nodes.*hostKey/m);
      assertNoSecret(r);

      const after = await Promise.all(nodes.map((n, i) => nodeState(n, paths[i]!)));
      assert.deepEqual(after, before, "no file, state file or kubelet process changed");
      assert.deepEqual(before[0]!.state, [], "no state dir on a node never switched");
      const left = fs.readdirSync(stack.env.TMPDIR!).filter((f) => f.startsWith("nodelocaldns-"));
      assert.deepEqual(left, [], "no temp dir (keys, known_hosts) left");
    },
  );

  it(
    "through a bastion with its own key and host key; a wrong bastion host key",
    { timeout: 180_000 },
    async () => {
      // node-switch as its own bastion: from inside it, 127.0.0.1:22 is its own sshd.
      const bastion = new TestStack(nodeTests.pulumi!, "check-bastion");
      await bastion.cli(["stack", "init", "--non-interactive"]);
      await bastion.cli(["config", "set", "clusterDnsIp", "10.96.0.10"]);
      await bastion.cli(["config", "set", "--secret", "--path", "ssh.privateKey"], privateKey);
      await bastion.cli(
        ["config", "set", "--secret", "--path", "ssh.proxy.privateKey"],
        privateKey,
      );
      await bastion.set("ssh.proxy.host", forwards[0]!.address);
      await bastion.set("ssh.proxy.port", String(forwards[0]!.port));
      await bastion.set("ssh.proxy.hostKey", nodes[0]!.node.hostKey);
      await bastion.set("nodes[0].name", "node-behind");
      await bastion.set("nodes[0].host", "127.0.0.1");
      await bastion.set("nodes[0].hostKey", nodes[0]!.node.hostKey);
      const before = await nodeState(nodes[0]!, Object.keys(SWITCH.files));
      const r = await bastion.check();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /^node-behind: would switch 10\.96\.0\.10 -> 169\.254\.20\.10 in \/var\/lib\/kubelet\/config\.yaml \(config-file\) and restart kubelet; /,
      );
      assert.match(r.stdout, /\nchecked 1 node: 1 would switch\n$/);
      assertNoSecret(r);
      await bastion.set("ssh.proxy.hostKey", nodes[2]!.node.hostKey);
      const wrong = await bastion.check();
      assert.equal(wrong.code, 1);
      assert.equal(
        wrong.stdout,
        `node-behind: bastion: the host key of ${endpointOf(0)} did not match the pinned hostKey\n` +
          "checked 1 node: 1 could not be checked\n",
      );
      assertNoSecret(wrong);
      assert.deepEqual(await nodeState(nodes[0]!, Object.keys(SWITCH.files)), before);
    },
  );

  it("a wrong pinned host key: that node's line says so", { timeout: 180_000 }, async () => {
    // node-switch's host key, pinned for node-refused.
    await stack.set("nodes[2].hostKey", nodes[0]!.node.hostKey);
    try {
      const before = await nodes[2]!.kubelet();
      const r = await stack.check("--node", "node-refused");
      assert.equal(r.code, 1, r.stderr);
      assert.equal(
        r.stdout,
        `node-refused: the host key of ${endpointOf(2)} did not match the pinned hostKey\n` +
          "checked 1 node: 1 could not be checked\n",
      );
      assertNoSecret(r);
      assert.equal((await nodes[2]!.kubelet()).starts, before.starts);
    } finally {
      await stack.set("nodes[2].hostKey", nodes[2]!.node.hostKey);
    }
  });
});
