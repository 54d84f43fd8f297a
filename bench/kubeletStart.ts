// How long a node's kubelet takes to restart, timed inside the node: `systemctl restart`, then
// /healthz polled every 20 ms until it says ok. Section 4 subtracts the part after systemctl
// returns (kubelet's own start, which a verified switch must wait for and the write-up's step
// does not); section 6 uses the whole restart.

/** The script, run as root on the node; prints three EPOCHREALTIME stamps. */
export const KUBELET_RESTART_SCRIPT = `
systemctl reset-failed kubelet.service 2>/dev/null
start=\${EPOCHREALTIME}
systemctl restart kubelet.service
returned=\${EPOCHREALTIME}
for _ in $(seq 1 500); do
  if exec 3<>/dev/tcp/127.0.0.1/10248; then
    printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3
    reply=$(cat <&3)
    exec 3>&-
    if [[ \${reply} == *$'\\r\\n\\r\\n'ok ]]; then
      echo "\${start} \${returned} \${EPOCHREALTIME}"
      exit 0
    fi
  fi 2>/dev/null
  sleep 0.02
done
exit 1`;

export interface KubeletRestart {
  /** From `systemctl restart` to /healthz ok. */
  totalMs: number;
  /** From `systemctl restart` returning to /healthz ok: kubelet's own start. */
  startMs: number;
}

/** Runs the script through `run` (a root shell on the node) and reads its stamps. */
export async function timeKubeletRestart(
  run: (script: string) => Promise<{ code: number; stdout: string; stderr: string }>,
  what: string,
): Promise<KubeletRestart> {
  const r = await run(KUBELET_RESTART_SCRIPT);
  if (r.code !== 0) throw new Error(`kubelet restart on ${what}: ${r.stderr}`);
  const [start, returned, end] = r.stdout.trim().split(" ").map(Number);
  return { totalMs: (end! - start!) * 1000, startMs: (end! - returned!) * 1000 };
}
