import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { knownHostKey, parseKnownHosts } from "../components/knownHosts";

// Public keys made with `ssh-keygen -t <type> -N ''` (private halves discarded), as ssh-keyscan
// would print them: "<type> <base64>".
const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDVWRwSGUFHWuX9N2B91x3v0CAkpcrXrAqjKuyKXYXF9";
const ECDSA256 =
  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPx/8gkXmWOTRmkAZF1Dy9YQfvwSomVqHImB9TdWyMwdNHyuiwAWZm4DxOYfXUt8zI7VhZsmtKsWJjPOn4rEscU=";
const ECDSA384 =
  "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBIeYV84gAmoh9sBV1EpKBeTo6w6+VZXzvS3YXix7f5ROZ4exCtS6dYNkfeAUqz3HDaeWMrFxGW0rVuzMQ+Qt0f+WPTNfC7OaG66yY4EeDXu1B2tFy4QsliBtbsdZz6dbHg==";
const RSA =
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCJx921MzI359SxS1MgkwAjiqwsSSFHWs8TvSDRyvVt9Pg+lAmO8LR7S94t+4R216cmN8DyoCsmF78XC0mLoZd33wwPx5NAC3EzGD+39x3mBLQIoG3s6Nl7/DOxHTdq+y3ySDzvKCRALTbYCTZAk+mXCBTCpinzFI5rwYut9NYdaqHkESBUh9+fHw70bns6K28E5l4MUWEiLQ4L8royJRUHutmm8NxyEFTtgXvDCLt0ye1Tx6oFwZFAyG2qfnJQ4Gp1wbKdHnoik+ZGvycwkmDfayKFXKTSVfeC05SIE9duOAZ/J0Fy1trzxUWWt5ZNjqvbp+clDymrSQGk+FJ8g7dR";

/** SSH wire "string": uint32 length, then the bytes. */
function sshString(value: string | Buffer): Buffer {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** Security-key types need hardware for ssh-keygen, so their public blobs are built here. */
function skKey(type: string, point: Buffer, curve?: string): string {
  const parts = [sshString(type), ...(curve ? [sshString(curve)] : []), sshString(point)];
  return `${type} ${Buffer.concat([...parts, sshString("ssh:")]).toString("base64")}`;
}

const SK_ED25519 = skKey("sk-ssh-ed25519@openssh.com", Buffer.alloc(32, 1));
const SK_ECDSA = skKey(
  "sk-ecdsa-sha2-nistp256@openssh.com",
  Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 2)]),
  "nistp256",
);

const BLOBS = [ED25519, ECDSA256, ECDSA384, RSA, SK_ED25519, SK_ECDSA].map((k) => k.split(" ")[1]);

/** A hashed host field as `ssh-keyscan -H` writes it, for a chosen salt. */
function hashedHost(lookupName: string, salt: Buffer): string {
  const hash = createHmac("sha1", salt).update(lookupName).digest();
  return `|1|${salt.toString("base64")}|${hash.toString("base64")}`;
}

const SALT = Buffer.from(Array.from({ length: 20 }, (_, i) => i * 13));

/** Parse text that must be clean. */
function parseClean(lines: string[]) {
  const { knownHosts, problems } = parseKnownHosts(lines.join("\n"));
  assert.deepEqual(problems, []);
  return knownHosts;
}

/** Assert each [host, port, expected key] lookup in turn. */
function assertLookups(
  lines: string[],
  cases: [host: string, port: number, expected: string | undefined][],
): void {
  const knownHosts = parseClean(lines);
  for (const [host, port, expected] of cases) {
    assert.equal(knownHostKey(knownHosts, host, port), expected, `${host}:${port}`);
  }
}

describe("knownHostKey", () => {
  it("pins a plain host name or address on port 22", () => {
    assertLookups(
      [`node-1 ${ED25519}`, `10.0.0.2 ${ECDSA256}`, `node-3,10.0.0.3 ${RSA}`],
      [
        ["node-1", 22, ED25519],
        ["10.0.0.2", 22, ECDSA256],
        ["node-3", 22, RSA],
        ["10.0.0.3", 22, RSA],
        ["node-2", 22, undefined],
        ["node", 22, undefined],
        ["node-1.example.com", 22, undefined],
      ],
    );
  });

  it("keeps [host]:port and port 22 apart", () => {
    assertLookups(
      [`[node-2]:2222 ${ED25519}`, `node-3 ${ECDSA256}`, `[node-4]:22 ${RSA}`],
      [
        ["node-2", 2222, ED25519],
        ["node-2", 22, undefined],
        ["node-2", 222, undefined],
        ["node-3", 22, ECDSA256],
        ["node-3", 2222, undefined],
        ["node-4", 22, RSA],
        ["node-4", 2222, undefined],
      ],
    );
  });

  it("pins IPv6 addresses, bare for port 22 and bracketed with a port", () => {
    assertLookups(
      [`fd00::1 ${ED25519}`, `[fd00::2]:2222 ${ECDSA256}`, `[fd00::3]:22 ${RSA}`],
      [
        ["fd00::1", 22, ED25519],
        ["fd00::1", 2222, undefined],
        ["fd00::2", 2222, ECDSA256],
        ["fd00::2", 22, undefined],
        ["fd00::3", 22, RSA],
        ["fd00::4", 22, undefined],
      ],
    );
  });

  it("compares names case-insensitively", () => {
    assertLookups(
      [`Node-1.Example.COM ${ED25519}`, `[NODE-2]:2222 ${ECDSA256}`, `FD00::A ${RSA}`],
      [
        ["node-1.example.com", 22, ED25519],
        ["NODE-1.EXAMPLE.COM", 22, ED25519],
        ["node-2", 2222, ECDSA256],
        ["fd00::a", 22, RSA],
      ],
    );
  });

  it("matches hashed entries made with a known salt", () => {
    assertLookups(
      [
        `${hashedHost("node-5", SALT)} ${ED25519}`,
        `${hashedHost("[node-6]:2222", SALT)} ${ECDSA256}`,
        `${hashedHost("[fd00::7]:2222", SALT)} ${RSA}`,
        // OpenSSH never writes "[host]:22", so a lookup for port 22 hashes the bare name only.
        `${hashedHost("[node-8]:22", SALT)} ${ED25519}`,
      ],
      [
        ["node-5", 22, ED25519],
        ["NODE-5", 22, ED25519],
        ["node-5", 2222, undefined],
        ["node-55", 22, undefined],
        ["node-6", 2222, ECDSA256],
        ["node-6", 22, undefined],
        ["node-6", 2223, undefined],
        ["fd00::7", 2222, RSA],
        ["node-8", 22, undefined],
      ],
    );
  });

  it("matches hashed lines written by `ssh-keygen -H`", () => {
    assert.equal(
      hashedHost("node-1", Buffer.from("dGM1jN6Yp4rKSrZMevzkH6P76Ik=", "base64")),
      "|1|dGM1jN6Yp4rKSrZMevzkH6P76Ik=|yxUte4QaEQT3NFGpEPCw31uXoiE=",
    );
    assertLookups(
      [
        `|1|dGM1jN6Yp4rKSrZMevzkH6P76Ik=|yxUte4QaEQT3NFGpEPCw31uXoiE= ${ED25519}`,
        `|1|VkBc83oeFor6tJF9HVPKvzsRXP0=|qvUnzm3vHUuqIPrTJuoQNcPWUWE= ${ECDSA256}`,
      ],
      [
        ["node-1", 22, ED25519],
        ["node-2", 2222, ECDSA256],
        ["node-2", 22, undefined],
        ["node-3", 22, undefined],
      ],
    );
  });

  it("prefers ed25519, then ecdsa by size, then rsa, then security keys", () => {
    const table: [keys: string[], expected: string][] = [
      [[RSA, ECDSA256, ED25519], ED25519],
      [[SK_ED25519, RSA, ECDSA384, ED25519, ECDSA256], ED25519],
      [[RSA, ECDSA384, ECDSA256], ECDSA256],
      [[RSA, ECDSA384], ECDSA384],
      [[SK_ECDSA, SK_ED25519, RSA], RSA],
      [[SK_ECDSA, SK_ED25519], SK_ED25519],
      [[SK_ECDSA], SK_ECDSA],
    ];
    for (const [keys, expected] of table) {
      const knownHosts = parseClean(keys.map((key) => `node-1 ${key}`));
      const order = keys.map((key) => key.split(" ")[0]).join(", ");
      assert.equal(knownHostKey(knownHosts, "node-1", 22), expected, order);
    }
  });

  it("takes the first key of the preferred type, whichever pattern matched", () => {
    const blob = Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.alloc(32, 1))]);
    const other = `ssh-ed25519 ${blob.toString("base64")}`;
    assertLookups(
      [`node-1 ${RSA}`, `node-1 ${ED25519}`, `10.0.0.1,node-1 ${other}`],
      [
        ["node-1", 22, ED25519],
        ["10.0.0.1", 22, other],
      ],
    );
    assertLookups(
      [`${hashedHost("node-1", SALT)} ${other}`, `node-1 ${ED25519}`],
      [["node-1", 22, other]],
    );
  });

  it("skips comments and blank lines, accepts CRLF, tabs and trailing comments", () => {
    const text = [
      "# node-1:22 SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13",
      "",
      "   # indented comment",
      "\t",
      `node-1 ${ED25519} root@node-1`,
      `node-2\t\t${ECDSA256.replace(" ", "  \t")}   a comment with spaces  `,
      `  [node-3]:2222 ${RSA}`,
      "",
    ].join("\r\n");
    const { knownHosts, problems } = parseKnownHosts(text);
    assert.deepEqual(problems, []);
    assert.equal(knownHostKey(knownHosts, "node-1", 22), ED25519);
    assert.equal(knownHostKey(knownHosts, "node-2", 22), ECDSA256);
    assert.equal(knownHostKey(knownHosts, "node-3", 2222), RSA);
    assert.equal(knownHostKey(knownHosts, "#", 22), undefined);
  });

  it("finds nothing in empty text", () => {
    for (const text of ["", "\n", "\r\n\r\n", "# only a comment\n"]) {
      const { knownHosts, problems } = parseKnownHosts(text);
      assert.deepEqual(problems, []);
      assert.equal(knownHostKey(knownHosts, "node-1", 22), undefined);
    }
  });
});

describe("parseKnownHosts refusals", () => {
  const edBlob = ED25519.split(" ")[1];
  const rsaBlob = RSA.split(" ")[1];
  const wildcards = "host pattern wildcards and negations are not supported: list each host";
  const unknownType =
    "unknown key type; expected one of ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, " +
    "ecdsa-sha2-nistp521, ssh-rsa, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com";
  const tooFew = "expected host patterns, a key type and a base64 key";
  const badPattern = "malformed host pattern: expected a name, an address or [host]:port";
  const salt = SALT.toString("base64");
  const table: [line: string, problem: string][] = [
    [
      `@cert-authority *.example.com ${ED25519}`,
      "@cert-authority: a CA cannot be pinned as a host key; list the hosts' own keys",
    ],
    [
      `@cert-authority node-1 ${ED25519}`,
      "@cert-authority: a CA cannot be pinned as a host key; list the hosts' own keys",
    ],
    [`@revoked node-1 ${ED25519}`, "@revoked entries are not supported"],
    [`@trusted node-1 ${ED25519}`, "unknown @ marker"],
    [`*.example.com ${ED25519}`, wildcards],
    [`node-? ${ED25519}`, wildcards],
    [`node-1,!node-2 ${ED25519}`, wildcards],
    [`[node-*]:2222 ${ED25519}`, wildcards],
    [`10.0.0.* ${ED25519}`, wildcards],
    [`node-1 ssh-dss ${edBlob}`, unknownType],
    [`node-1 SSH-ED25519 ${edBlob}`, unknownType],
    [`node-1 ${edBlob} ssh-ed25519`, unknownType],
    [`node-1 ssh-ed25519 ${edBlob.slice(0, -1)}`, "the key is not valid base64"],
    [`node-1 ssh-ed25519 ${edBlob}$`, "the key is not valid base64"],
    [
      `node-1 ssh-ed25519 ${edBlob.slice(0, 8)}-_${edBlob.slice(10)}`,
      "the key is not valid base64",
    ],
    [`node-1 ssh-ed25519 ${rsaBlob}`, "the key's blob is not a ssh-ed25519 key"],
    [
      `node-1 ecdsa-sha2-nistp384 ${ECDSA256.split(" ")[1]}`,
      "the key's blob is not a ecdsa-sha2-nistp384 key",
    ],
    [`node-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5`, "the key's blob is not a ssh-ed25519 key"],
    [`node-1 ssh-rsa AAAA`, "the key's blob is not a ssh-rsa key"],
    [`node-1 ssh-ed25519`, tooFew],
    [`node-1`, tooFew],
    [edBlob, tooFew],
    [`|1|${salt} ${ED25519}`, "malformed hashed host"],
    [`|2|${salt}|${salt} ${ED25519}`, "malformed hashed host"],
    [`|1|${salt}|${salt}|${salt} ${ED25519}`, "malformed hashed host"],
    [`|1|${salt}|AAAA ${ED25519}`, "malformed hashed host"],
    [`|1|not*base64|${salt} ${ED25519}`, "malformed hashed host"],
    [`|1||${salt} ${ED25519}`, "malformed hashed host"],
    [`[node-1] ${ED25519}`, badPattern],
    [`[node-1]:2222x ${ED25519}`, badPattern],
    [`node-1]:2222 ${ED25519}`, badPattern],
    [`node-1,,node-2 ${ED25519}`, badPattern],
    [`node-1, ${ED25519}`, badPattern],
    [`[]:2222 ${ED25519}`, badPattern],
    [`[node-1]:0 ${ED25519}`, "host pattern has a port out of range"],
    [`[node-1]:65536 ${ED25519}`, "host pattern has a port out of range"],
  ];

  it("refuses each bad line with its own message and pins nothing from it", () => {
    for (const [line, problem] of table) {
      const { knownHosts, problems } = parseKnownHosts(line);
      assert.deepEqual(problems, [`line 1: ${problem}`], line);
      assert.equal(knownHostKey(knownHosts, "node-1", 22), undefined, line);
      assert.equal(knownHostKey(knownHosts, "node-1", 2222), undefined, line);
    }
  });

  it("never echoes a key, a salt or the line in a problem", () => {
    const { problems } = parseKnownHosts(table.map(([line]) => line).join("\n"));
    assert.equal(problems.length, table.length);
    for (const problem of problems) {
      for (const secretish of [...BLOBS.map((blob) => blob.slice(12, 40)), salt, "node-1"]) {
        assert.ok(!problem.includes(secretish), `${problem} includes ${secretish}`);
      }
    }
  });

  it("reports every bad line at once, numbered, and still parses the good ones", () => {
    const text = [
      "# fleet",
      `node-1 ${ED25519}`,
      `@cert-authority *.example.com ${ED25519}`,
      "",
      `node-2 ssh-dss ${edBlob}`,
      `node-3 ${ECDSA256}`,
      `*.example.com ${RSA}`,
      `node-4`,
      `|1|x|y ${ED25519}`,
    ].join("\r\n");
    const { knownHosts, problems } = parseKnownHosts(text);
    assert.deepEqual(problems, [
      "line 3: @cert-authority: a CA cannot be pinned as a host key; list the hosts' own keys",
      `line 5: ${unknownType}`,
      `line 7: ${wildcards}`,
      `line 8: ${tooFew}`,
      "line 9: malformed hashed host",
    ]);
    assert.equal(knownHostKey(knownHosts, "node-1", 22), ED25519);
    assert.equal(knownHostKey(knownHosts, "node-2", 22), undefined);
    assert.equal(knownHostKey(knownHosts, "node-3", 22), ECDSA256);
  });
});
