// The DNS client of bench/cacheUpgrade/upgrade.sh: sends an A query for a cluster name to the
// cache every INTERVAL_MS over UDP until SIGTERM, then waits for the last answers and prints one
// JSON line (QueryLoopSummary). Runs inside the upgrade's own network namespace.
//
// Usage: node --import tsx bench/cacheUpgrade/queryLoop.ts SERVER_IP
import * as dgram from "node:dgram";
import { performance } from "node:perf_hooks";

const INTERVAL_MS = 5;
/** A query not answered within this counts as failed (glibc would wait 5 s, then retry). */
const TIMEOUT_MS = 1000;
const NAME = "kubernetes.default.svc.cluster.local";

export interface QueryLoopSummary {
  sent: number;
  answered: number;
  /** Timed out, or answered with an error code or no address. */
  failed: number;
  /** The longest time between the sending of two answered queries with none answered between. */
  longestGapMs: number;
}

interface Query {
  sentAt: number;
  ok?: boolean;
}

function encodeQuery(id: number, name: string): Buffer {
  const labels = name.split(".").map((label) => {
    const bytes = Buffer.from(label, "ascii");
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  });
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4); // one question
  // type A, class IN
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** The longest span between consecutive answered queries' send times (from the first sent). */
export function longestGap(queries: readonly Query[]): number {
  let longest = 0;
  let lastAnswered = queries[0]?.sentAt;
  for (const q of queries) {
    if (q.ok !== true || lastAnswered === undefined) continue;
    longest = Math.max(longest, q.sentAt - lastAnswered);
    lastAnswered = q.sentAt;
  }
  const last = queries.at(-1);
  if (last !== undefined && last.ok !== true && lastAnswered !== undefined) {
    longest = Math.max(longest, last.sentAt - lastAnswered);
  }
  return longest;
}

function main(server: string): void {
  const socket = dgram.createSocket("udp4");
  const queries: Query[] = [];
  socket.on("message", (msg) => {
    if (msg.length < 12) return;
    const q = queries[msg.readUInt16BE(0)];
    if (q === undefined || q.ok !== undefined) return;
    const rcode = msg.readUInt16BE(2) & 0xf;
    const answers = msg.readUInt16BE(6);
    q.ok = performance.now() - q.sentAt <= TIMEOUT_MS && rcode === 0 && answers > 0;
  });
  socket.on("error", (err) => process.stderr.write(`socket: ${err.message}\n`));
  const sender = setInterval(() => {
    const id = queries.length;
    if (id > 0xffff) return; // at most 65,536 queries (5.5 min at the interval)
    queries.push({ sentAt: performance.now() });
    socket.send(encodeQuery(id, NAME), 53, server);
  }, INTERVAL_MS);
  process.once("SIGTERM", () => {
    clearInterval(sender);
    setTimeout(() => {
      socket.close();
      const answered = queries.filter((q) => q.ok === true).length;
      const summary: QueryLoopSummary = {
        sent: queries.length,
        answered,
        failed: queries.length - answered,
        longestGapMs: Math.round(longestGap(queries)),
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    }, TIMEOUT_MS + 100);
  });
}

if (require.main === module) {
  const server = process.argv[2];
  if (server === undefined || !/^[0-9.]+$/.test(server)) {
    process.stderr.write("usage: queryLoop.ts SERVER_IPV4\n");
    process.exit(2);
  }
  main(server);
}
