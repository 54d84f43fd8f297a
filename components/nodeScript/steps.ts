// Bash fragments of the node program that act: wait for the cache, restart kubelet, switch, revert,
// and the dispatch on "$1". They build on the helpers in ./files.
import { bash } from "./bash";

// The cache serves on this node when its IP is on an interface and TCP 53 on it accepts a
// connection (bash's /dev/tcp takes an IPv6 address without brackets). Polled once a second until
// the deadline; giving up changes nothing.
const READY = bash`rdy() { local d=$((SECONDS+RT)) a w
while :; do a=$(ip -o addr show 2>&1 || :)
if [[ ! $a =~ \ inet6?\ "$L"/ ]]; then w="$L on no interface"
elif timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/53"' _ "$L" 2>/dev/null; then say "cache serves on $L:53"; return
else w="no TCP listener on $L:53"; fi
((SECONDS<d)) || die "cache not serving on $L:53 after \${RT}s ($w); kubelet left unchanged"
sleep 1; done; }
`;

// `systemctl restart` can fail or succeed whatever kubelet then does: what counts is `is-active`.
// A Type=simple kubelet reads "active" right after the fork, even if it exits on its config a
// moment later: it must read "active" twice, a second apart. "failed" ends the wait early; the
// deadline bounds it (an "active" read at the deadline still gets its second read), also a
// restart that blocks (a stop or start job that hangs): it is not waited for beyond the deadline.
const RESTART = bash`up() { local d=$((SECONDS+KT)) k=0 s
timeout $KT systemctl restart kubelet >/dev/null 2>&1 || :
while :; do s=$(systemctl is-active kubelet 2>/dev/null || :)
if [[ $s == active ]]; then k=$((k+1)); else k=0; fi
if ((k>1)); then say "kubelet restarted, active"; return; fi
if [[ $s == failed ]] || ((!k && SECONDS>=d)); then say "kubelet is \${s:-unknown}"; return 1; fi
sleep 1; done; }
`;

// go saves the bytes to go back to ($1) in S/pre, puts $2 in place and arms the undo (U=1).
// undo puts back the bytes saved in S/pre and restarts kubelet (U=2: state recorded but the file
// not replaced yet: nothing to put back). Then Z=1: the state belonged to this step only and goes;
// Z=0: the state from before the step stays. If the file cannot be put back, S/pre is the only
// copy of its old bytes, so nothing is removed.
const UNDO = bash`go() { sv pre -f "$1"; put "$2" "$f"; U=1; say "wrote $f: cluster DNS $V -> $3; restarting kubelet"; }
undo() { local u=$U; U=; trap - ERR; set +e
if ((u<2)); then
if put "$S/pre" "$f"; then say "restored $f"; else say "cannot restore $f; old bytes in $S/pre"; Z=2; fi
up; fi
case $Z in 1) clr ;; 0) rm -f "$S/pre" "$S/new" ;; esac; }
`;

// rec records the original: the kubelet file's path, its bytes ($1) and its value ($2).
// create/update. st: state exists; ad: what we set last. Cases for the current value V:
// - V is L: done if we set it; no state means someone switched by hand: adopt (record the file
//   as if it had C, no restart); state without ad=L is a switch cut short: confirm it with a
//   restart, rolling back to the recorded original if kubelet does not come back.
// - V is ad (L changed since): keep the recorded original (Z=0).
// - otherwise (fresh, or the file was reset since): record the original from the file (Z=1).
// The file must still hold the bytes parsed before the wait for the cache: writing them back
// would undo an edit made meanwhile (and record it as the original).
// State is written before the file (U=2 from then: a failure removes state this step recorded);
// applied/applied-dns only once kubelet is back, and the switch stays armed (U=1) until then, so
// any failure puts the old bytes back.
const SWITCH = bash`rec() { mk; sv path "$f"; sv original -f "$1"; sv original-dns "$2"; }
sw() { local st= ad= p
loc
[[ -z $KP || $KP == "$f" ]] || no "state in $S is for $f, not kubelet.path $KP"
rs st original-dns; rs ad applied-dns
p=$f Z=1
if [[ $V == "$L" ]]; then
if [[ $st && $ad == "$L" ]]; then say "already switched; nothing to do, kubelet not restarted"; return; fi
if [[ -z $st ]]; then U=2; mk; emit "$C" >"$S/new"; rec "$S/new" "$C"; sv applied -f "$f"; sv applied-dns "$L"; U=; rm -f "$S/new"
say "no state: switched by hand; adopted (delete sets $C), kubelet not restarted"; return; fi
p=$S/original; say "unconfirmed switch: confirming it"
elif [[ $st && $V == "$ad" ]]; then Z=0; say "switched to $ad earlier: keeping the original"
fi
rdy; ck " changed while waiting for the cache"
if ((Z)) && [[ $V != "$L" ]]; then U=2; rm -f "$S"/applied*; rec "$f" "$V"; fi
emit "$L" >"$S/new"; go "$p" "$S/new" "$L"
if up; then sv applied -f "$S/new"; sv applied-dns "$L"; U=; rm -f "$S/pre" "$S/new"; return; fi
undo; die "kubelet did not come back after switching cluster DNS to $L; restored $f and restarted kubelet"; }
`;

// delete. The file exactly as we wrote it gets its original bytes back; with other edits since,
// only the value goes back (when it is still ours); a value changed by someone else is theirs.
// A failed restart puts the switched bytes back and keeps the state, so delete can be run again.
const REVERT = bash`rv() { local od= ad=$L s
rs od original-dns
if [[ -z $od ]]; then say "no state in $S: nothing to revert, kubelet not restarted"; return; fi
loc; rs ad applied-dns
if [[ -f $S/applied && -f $S/original ]] && cmp -s "$S/applied" "$f"; then s=$S/original; say "$f as we wrote it: restoring the original bytes"
elif [[ $V == "$ad" ]]; then emit "$od" >"$S/new"; s=$S/new; say "$f edited since the switch: setting only cluster DNS back to $od"
else say "cluster DNS changed to $V by someone else (we set $ad): leaving $f alone, kubelet not restarted"; clr; return; fi
Z=0; go "$f" "$s" "$od"
if up; then U=; clr; return; fi
undo; die "kubelet did not come back after restoring $f; put the switched file back, restarted kubelet, kept $S"; }
`;

// The first line names the action; update is create under another name.
const DISPATCH = bash`say "\${1-}"
case \${1-} in create|update) sw ;; delete) rv ;; *) die "usage: create|update|delete" ;; esac
`;

/** The steps and the dispatch that ends the program. */
export const STEPS = READY + RESTART + UNDO + SWITCH + REVERT + DISPATCH;
