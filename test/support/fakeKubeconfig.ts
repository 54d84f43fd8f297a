// Test-only: a kubeconfig (as text) for a fake API server on loopback over plain HTTP, which
// @kubernetes/client-node accepts only with TLS verification off.
import * as fs from "node:fs";
import type * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";

/** The kubeconfig text for http://127.0.0.1:<port>, authenticating with a bearer token. */
export function plainHttpKubeconfig(port: number, token = "fake-token"): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    `clusters: [{name: fake, cluster: {server: 'http://127.0.0.1:${port}', insecure-skip-tls-verify: true}}]`,
    `users: [{name: fake, user: {token: ${token}}}]`,
    "contexts: [{name: fake, context: {cluster: fake, user: fake}}]",
    "current-context: fake",
    "",
  ].join("\n");
}

/**
 * Serves `server` on a free loopback port and writes a kubeconfig for it in a temp dir. stop()
 * closes the server, its connections included, and removes the dir.
 */
export async function serveFakeApi(
  server: http.Server,
): Promise<{ kubeconfig: string; stop(): void }> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-fake-api-"));
  const kubeconfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(kubeconfig, plainHttpKubeconfig((server.address() as { port: number }).port));
  return {
    kubeconfig,
    stop() {
      server.closeAllConnections();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
