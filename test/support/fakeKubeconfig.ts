// Test-only: a kubeconfig (as text) for a fake API server on loopback over plain HTTP, which
// @kubernetes/client-node accepts only with TLS verification off.

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
