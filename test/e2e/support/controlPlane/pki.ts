// The control plane's PKI, made with Debian's openssl into <dir>/pki: a CA; a serving
// certificate for kube-apiserver (127.0.0.1, localhost and the first service IP, so that clients
// verify it instead of skipping verification); an admin client certificate in system:masters
// (RBAC's built-in cluster-admin group); and the service-account signing key pair.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const OPENSSL_TIMEOUT_MS = 30_000;
const DAYS = "2";

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

function openssl(dir: string, args: string[]): void {
  const result = spawnSync("openssl", args, {
    cwd: dir,
    encoding: "utf8",
    timeout: OPENSSL_TIMEOUT_MS,
    killSignal: "SIGKILL",
    env: { PATH: "/usr/bin:/bin", OPENSSL_CONF: "/etc/ssl/openssl.cnf" },
  });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${result.error?.message ?? `exit ${result.status}`}\n` +
        result.stderr,
    );
  }
}

/** Makes the PKI in <dir>/pki (about a second: four RSA-2048 keys). */
export function makePki(parent: string): Pki {
  const dir = path.join(parent, "pki");
  fs.mkdirSync(dir, { mode: 0o700 });
  const f = (name: string): string => path.join(dir, name);
  const rsa = (key: string): void => openssl(dir, ["genrsa", "-out", key, "2048"]);
  const sign = (name: string, subject: string, extensions: string): void => {
    rsa(`${name}.key`);
    openssl(dir, ["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`]);
    fs.writeFileSync(f(`${name}.ext`), extensions);
    openssl(dir, [
      ...["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"],
      ...["-CAcreateserial", "-days", DAYS, "-extfile", `${name}.ext`, "-out", `${name}.crt`],
    ]);
  };

  rsa("ca.key");
  openssl(dir, [
    ...["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=nodelocaldns-e2e-ca"],
    ...["-days", DAYS, "-out", "ca.crt"],
  ]);
  sign(
    "apiserver",
    "/CN=kube-apiserver",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
      "extendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc\n",
  );
  sign(
    "admin",
    "/O=system:masters/CN=e2e-admin",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
      "extendedKeyUsage=clientAuth\n",
  );
  rsa("sa.key");
  openssl(dir, ["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);

  return {
    dir,
    caCert: f("ca.crt"),
    caKey: f("ca.key"),
    serverCert: f("apiserver.crt"),
    serverKey: f("apiserver.key"),
    adminCert: f("admin.crt"),
    adminKey: f("admin.key"),
    saKey: f("sa.key"),
    saPub: f("sa.pub"),
  };
}

/**
 * A serving certificate signed by the PKI's CA for these IP addresses (a stand-in kubelet's, which
 * the API server verifies with --kubelet-certificate-authority), in the PKI's dir.
 */
export function signServingCert(
  pki: Pki,
  name: string,
  ips: string[],
): { cert: string; key: string } {
  const key = path.join(pki.dir, `${name}.key`);
  const csr = path.join(pki.dir, `${name}.csr`);
  const ext = path.join(pki.dir, `${name}.ext`);
  const cert = path.join(pki.dir, `${name}.crt`);
  openssl(pki.dir, ["genrsa", "-out", key, "2048"]);
  openssl(pki.dir, ["req", "-new", "-key", key, "-subj", `/CN=${name}`, "-out", csr]);
  fs.writeFileSync(
    ext,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
      `extendedKeyUsage=serverAuth\nsubjectAltName=${ips.map((ip) => `IP:${ip}`).join(",")}\n`,
  );
  openssl(pki.dir, [
    ...["x509", "-req", "-in", csr, "-CA", pki.caCert, "-CAkey", pki.caKey, "-CAcreateserial"],
    ...["-days", DAYS, "-extfile", ext, "-out", cert],
  ]);
  return { cert, key };
}

/** An admin kubeconfig with the CA and client certificate inline. */
export function adminKubeconfig(pki: Pki, server: string): string {
  const b64 = (file: string): string => fs.readFileSync(file).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: e2e",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(pki.caCert)}`,
    "users:",
    "- name: e2e-admin",
    "  user:",
    `    client-certificate-data: ${b64(pki.adminCert)}`,
    `    client-key-data: ${b64(pki.adminKey)}`,
    "contexts:",
    "- name: e2e",
    "  context:",
    "    cluster: e2e",
    "    user: e2e-admin",
    "current-context: e2e",
    "",
  ].join("\n");
}
