// Bash fragments of the node program that find, parse and rewrite the kubelet file and keep the
// node-side state. Pure bash (no sed/awk/grep): the file is read into the array A, one element per
// line without its "\n" (a CRLF line keeps its "\r"), and E holds the "\n" that ends the file
// (empty when the last line has none), so that writing A back reproduces the file byte for byte.
// `loc` proves that before anything changes (emit '' | cmp), which also refuses what bash cannot
// hold (NUL bytes).
import { bash } from "./bash";

/** A cluster DNS value: one IP or IPs joined by commas. */
const IP_LIST = String.raw`[0-9A-Fa-f.:]+(,[0-9A-Fa-f.:]+)*`;

/**
 * Regexes, passed to bash as readonly variables: written once here, and never inline in `[[ =~ ]]`
 * where bash quoting would bend them. `[[:space:]]` also matches the "\r" of a CRLF line.
 */
export const REGEXES: Record<string, string> = {
  // The whole value as one list.
  IL: `^${IP_LIST}$`,
  // env-file: a `NAME=` line (optional `export `) with --cluster-dns=<list> before any `#`,
  // the list ending the value or followed by a quote, blank or `\`. Groups: 1 head, 3 list, 5 tail.
  ER: String.raw`^([[:space:]]*(export[[:space:]]+)?[A-Za-z_][A-Za-z0-9_]*=[^#]*--cluster-dns=)(${IP_LIST})((["'[:space:]\].*)?)$`,
  // config-file: a flow list `clusterDNS: [...]` (a `clusterDNS:` with nothing after it but a
  // comment starts a block list).
  FR: String.raw`^(clusterDNS:[[:space:]]*[[])([^]#]*)([]].*)$`,
  // A block item holding one IP (groups: 1 indent, dash and opening quote; 2 IP; 3 the rest),
  // any other item (IT), and lines that neither end a block list nor count as a mention (BL:
  // blank or comment).
  BR: String.raw`^([[:space:]]*-[[:space:]]+["']?)([0-9A-Fa-f.:]+)(["']?[[:space:]]*(#.*)?)$`,
  IT: String.raw`^[[:space:]]*-`,
  BL: String.raw`^[[:space:]]*(#.*)?$`,
};

// Output and failure. Every line carries the node's name: stderr goes through a filter that
// prefixes it (also what bash or a tool says on its own; fd 3 is the real stderr), stdout through
// say. `die` undoes an armed switch (U set: the kubelet file was already replaced) so that a
// failing step leaves the node as it found it; the ERR trap routes any unexpected failure through
// it. -E hands that trap to subshells too (`$(mktemp)`, a pipeline's part): there it only exits,
// and the failure reaches die once, in the main shell (never undo twice, in two processes).
// die writes its own message straight to the real stderr (fd 3), so the one line that says why the
// run failed never depends on the filter getting to it before the program exits.
// `no` fails before any change. T is the one temp file in flight.
const OUTPUT = bash`say() { printf 'nodelocaldns[%s]: %s\n' "$N" "$*" || :; }
exec 3>&2 2> >(while IFS= read -r l; do say "$l" >&3; done)
T= U= Z=0
die() { trap - ERR; say "$*" >&3; rm -f "$T"; [[ -z $U ]] || undo; exit 1; }
no() { die "$*; nothing changed"; }
trap '((BASHPID==$$))||exit 1;die "failed (line $LINENO): $BASH_COMMAND"' ERR
trap 'rm -f "$T"' EXIT
`;

// State: one file per value under S (mk: mode 700), each written to a temp file in S and renamed
// over. `rs` reads a value back, if there is one, and checks it against a regex (default: an IP
// list) instead of trusting (or sourcing) it. `clr` removes only the files this program writes,
// then the directory if that left it empty: never `rm -r` on a configurable path.
const STATE = bash`mk() { mkdir -p "$S"; chmod 700 "$S"; }
sv() { T=$(mktemp "$S/.XXXXXX"); if (($#>2)); then cp -p "$3" "$T"; else printf %s "$2" >"$T"; fi; mv -fT "$T" "$S/$1"; T=; }
rs() { local x; [[ -e $S/$2 ]] || return 0; x=$(<"$S/$2"); [[ $x =~ \${3-$IL} ]] || no "bad value in $S/$2"; printf -v "$1" %s "$x"; }
clr() { rm -f "$S"/{path,original*,applied*,pre,new}; rm -d "$S" 2>/dev/null && say "removed $S" || say "kept $S: other files in it"; }
`;

// Replacing the kubelet file: a temp file in the same directory (same filesystem, so the rename
// is atomic), owner and mode copied from the file it replaces, renamed over it.
const PUT = bash`put() { T=$(mktemp "\${2%/*}/.\${2##*/}.XXXXXX") && cat "$1" >"$T" && chown --reference="$2" "$T" && chmod --reference="$2" "$T" && mv -f "$T" "$2" && T=; }
`;

// rd loads a file into A. pf parses A as the format fm into V (the current list, empty: no
// setting), I (index of the line to rewrite), H/R (bytes before/after the list on it), W (style:
// b block, else how list items are joined: "," env, ", " flow) and D (indexes of further block
// items). A mention it cannot parse (m) or a second one (n > 1) fails: guessing which setting
// kubelet honours is not safe.
const PARSE = bash`rd() { local l; A=() E=$'\n'
[[ -f $1 && ! -L $1 && -r $1 ]] || no "$1: missing, unreadable or a symlink"
while IFS= read -r l || { [[ $l ]] && E=; }; do A+=("$l"); done <"$1"; }
pf() { local i l n=0 m= b= x; V= D=
for ((i=0;i<\${#A[@]};i++)); do l=\${A[i]}
if [[ $fm == e* ]]; then
[[ $l == *--cluster-dns* && ! $l =~ $BL ]] || continue
n=$((n+1)); [[ $l != *--cluster-dns*--cluster-dns* ]] || n=2
if [[ $l =~ $ER ]]; then I=$i H=\${BASH_REMATCH[1]} V=\${BASH_REMATCH[3]} R=\${BASH_REMATCH[5]} W=,; else m=1; fi
continue; fi
if [[ $b ]]; then
if [[ $l =~ $BR ]]; then
if [[ $V ]]; then D+=" $i" V+=,\${BASH_REMATCH[2]}; else I=$i H=\${BASH_REMATCH[1]} V=\${BASH_REMATCH[2]} R=\${BASH_REMATCH[3]} W=b; fi; continue
fi
[[ ! $l =~ $IT ]] || { m=1; continue; }
[[ ! $l =~ $BL ]] || continue
b=
fi
[[ $l == clusterDNS:* ]] || continue
n=$((n+1))
if [[ $l =~ $FR ]]; then H=\${BASH_REMATCH[1]} R=\${BASH_REMATCH[3]} x=\${BASH_REMATCH[2]//[\"\'[:space:]]/}
if [[ $x =~ $IL ]]; then I=$i V=$x W=', '; elif [[ $x ]]; then m=1; fi
elif [[ \${l#clusterDNS:} =~ $BL ]]; then b=1
else m=1; fi
done
((n<2)) || no "$f ($fm): more than one cluster DNS setting"
[[ -z $m ]] || no "$f ($fm): unparsable cluster DNS setting"; }
`;

// emit prints A with the setting set to the list $1 (empty: unchanged). env: the list alone is
// replaced; flow: `[a, b]`; block: one item per IP, each written like the first item (indent,
// dash, quote, rest of line), the other items dropped. IFS first splits $1 on commas, then joins
// the lines with "\n"; every line keeps its own ending (CRLF its CR), the file its last one (E).
const EMIT = bash`emit() { local i x B=() IFS=,
for ((i=0;i<\${#A[@]};i++)); do
if [[ $1 && $i == "$I" ]]; then
if [[ $W == b ]]; then for x in $1; do B+=("$H$x$R"); done; else B+=("$H\${1//,/$W}$R"); fi
elif [[ -z $1 || " $D " != *" $i "* ]]; then B+=("\${A[i]}"); fi
done
IFS=$'\n'; printf %s "\${B[*]}$E"; }
`;

// ck fails, changing nothing, unless the file still holds the bytes in A ($1: why it matters).
// loc finds the kubelet file (f, format fm) and parses it. Recorded state wins (revert must touch
// the file that was switched); then kubelet.path (format auto: config-file if a line starts with
// `clusterDNS:`); then the well-known locations (letter: their format) of the configured format
// (a: auto takes all), where exactly one may carry a setting.
const LOCATE = bash`ck() { emit '' | cmp -s - "$f" || no "$f$1"; }
loc() { local c g h k= t=
f=$KP; rs f path '^/[[:print:]]+$'
if [[ $f ]]; then rd "$f"; fm=$F
if [[ $fm == auto ]]; then fm=env-file; [[ $'\n'$(<"$f") != *$'\nclusterDNS:'* ]] || fm=config-file; fi
pf; [[ $V ]] || no "$f ($fm): no cluster DNS setting"
else
for c in e/etc/kubernetes/kubelet e/etc/default/kubelet e/etc/sysconfig/kubelet c/var/lib/kubelet/config.yaml; do
[[ $F == [a\${c:0:1}]* ]] || continue
f=\${c:1} fm=env-file t+=" $f"; [[ $c != c* ]] || fm=config-file
[[ -e $f || -L $f ]] || continue
rd "$f"; pf; [[ -z $V ]] || k+=" $f" g=$f h=$fm
done
[[ $k ]] || no "no cluster DNS setting in:$t"
[[ $k != " "*" "* ]] || no "cluster DNS set in more than one file:$k; set kubelet.path and kubelet.format"
f=$g fm=$h; rd "$f"; pf
fi
ck ": cannot rewrite it byte for byte"
say "found cluster DNS $V in $f ($fm)"; }
`;

/** Everything the steps build on: output, state, file parsing and rewriting. */
export const FILES = OUTPUT + STATE + PUT + PARSE + EMIT + LOCATE;
