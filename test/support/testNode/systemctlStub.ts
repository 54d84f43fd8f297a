// The node's systemctl: a bash stub that only knows kubelet, records every call and restart, and
// can be told to leave kubelet failed after the next N restarts. TestNode reads its state files.

import { NODE_STATE } from "./constants";

// The node's /usr/bin/systemctl. State in $NODE_STATE/systemctl (the host dir's node/systemctl).
export const SYSTEMCTL_STUB = `#!/bin/bash
# systemctl of a test node (test/support/testNode.ts): only kubelet exists.
set -u
state=${NODE_STATE}/systemctl
printf '%s\\n' "$*" >>"$state/calls.log"
quiet=0
args=()
for a in "$@"; do
  case $a in
  -q | --quiet) quiet=1 ;;
  --no-pager | --no-block | --no-ask-password | --system | -l | --full) ;;
  -*) echo "systemctl (test node stub): unsupported option $a" >&2; exit 1 ;;
  *) args+=("$a") ;;
  esac
done
unsupported() { echo "systemctl (test node stub): unsupported: systemctl $*" >&2; exit 1; }
if [[ \${#args[@]} -eq 1 && \${args[0]} == daemon-reload ]]; then exit 0; fi
[[ \${#args[@]} -eq 2 ]] || unsupported "$@"
[[ \${args[1]} == kubelet || \${args[1]} == kubelet.service ]] || unsupported "$@"
current=$(cat "$state/kubelet.state")
case \${args[0]} in
restart)
  printf '%s\\n' "$*" >>"$state/restarts.log"
  fail=$(cat "$state/fail-restarts")
  if ((fail > 0)); then
    echo $((fail - 1)) >"$state/fail-restarts"
    echo failed >"$state/kubelet.state"
  else
    echo active >"$state/kubelet.state"
  fi
  ;;
is-active)
  ((quiet)) || echo "$current"
  [[ $current == active ]] || exit 3
  ;;
status)
  if ((!quiet)); then
    echo "● kubelet.service - kubelet: The Kubernetes Node Agent"
    if [[ $current == active ]]; then
      echo "     Active: active (running)"
    else
      echo "     Active: failed (Result: exit-code)"
    fi
  fi
  [[ $current == active ]] || exit 3
  ;;
*) unsupported "$@" ;;
esac
exit 0
`;
