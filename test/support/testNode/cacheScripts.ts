// The node's stand-in for the node-local DNS cache: a tiny TCP listener on [localDnsIp]:53 and
// cache.sh, which starts and stops it inside the node (at boot and for setCacheListening()).

import { NODE_STATE } from "./constants";

// Stand-in for the node-local DNS cache: accepts TCP connections on [ip]:53.
export const CACHE_LISTENER_JS = `"use strict";
const net = require("net");
const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.end();
});
server.listen({ host: process.argv[2], port: 53 });
process.on("SIGTERM", () => process.exit(0));
`;

export const CACHE_SCRIPT = `# Starts or stops the node's stand-in for the node-local DNS cache
# (test/support/testNode.ts).
set -euo pipefail
state=${NODE_STATE}
ip=$(cat "$state/local-dns-ip")
pidfile=$state/cache.pid
alive() { # present and not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ \${s%% *} != Z ]]
}
running() { [[ -s $pidfile ]] && alive "$(cat "$pidfile")"; }
listening() { timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/53"' _ "$ip" 2>/dev/null; }
case \${1-} in
start)
  [[ -n $ip ]] || { echo "cache.sh: the node has no local DNS address" >&2; exit 1; }
  running && exit 0
  setsid "$state/bin/node" "$state/cache-listener.cjs" "$ip" </dev/null >>"$state/cache.log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  for ((i = 0; i < 200; i++)); do
    listening && exit 0
    alive "$pid" || break
    sleep 0.05
  done
  echo "cache.sh: no listener on $ip:53, see $state/cache.log:" >&2
  cat "$state/cache.log" >&2
  exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && { echo "cache.sh: listener $pid did not stop" >&2; exit 1; }
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: cache.sh start|stop" >&2
  exit 2
  ;;
esac
`;
