#!/usr/bin/python3
"""Stand-in kubelet of the systemd test nodes (test/support/systemdNode.ts).

Installed as /usr/bin/kubelet by build-rootfs.sh. It behaves like kubelet in
what the node program depends on: it parses kubelet's command line the way
pflag does, loads the --config file and the --config-dir drop-ins, checks
clusterDNS, and then runs like a daemon, serving /healthz and /configz. What
it ended up with is written to /run/kubelet/effective.json, and every start
is appended to /var/lib/kubelet-standin/starts.log, so that tests can see
which configuration a restart really picked up, and every /healthz request
to /var/lib/kubelet-standin/healthz.log (how often a waiting client looks).

Failure knobs, read at start from /etc/kubelet-standin/:
  fail-start      present: exit 1 at once (a kubelet that cannot start)
  crash-after N   exit 1 N seconds after starting
  healthz-delay N /healthz answers 503 for the first N seconds
  start-delay N   sleep N seconds before serving (a slow start)
  configz-cluster-dns LIST  /configz reports this comma-separated clusterDNS instead of the one
                  it runs with (what the control plane sees differs from the node's files)
"""

import copy
import datetime
import http.server
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time

import yaml

EFFECTIVE_FILE = "/run/kubelet/effective.json"
STARTS_LOG = "/var/lib/kubelet-standin/starts.log"
HEALTHZ_LOG = "/var/lib/kubelet-standin/healthz.log"
KNOBS_DIR = "/etc/kubelet-standin"
API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"

# Flags this stand-in acts on: name -> configuration field.
VALUE_FLAGS = {
    "config": None,
    "config-dir": None,
    "cluster-dns": "clusterDNS",
    "cluster-domain": "clusterDomain",
    "healthz-port": "healthzPort",
    "healthz-bind-address": "healthzBindAddress",
}

# Other kubelet flags that take a value: accepted and ignored (including a
# few that newer kubelets dropped but old node configurations still carry).
IGNORED_VALUE_FLAGS = frozenset(
    """
    address authorization-mode bootstrap-kubeconfig cert-dir cgroup-driver
    cgroup-root cgroups-per-qos-root client-ca-file cloud-config
    cloud-provider cni-bin-dir cni-cache-dir cni-conf-dir container-log-max-files
    container-log-max-size container-runtime container-runtime-endpoint
    cpu-manager-policy enforce-node-allocatable eviction-hard
    eviction-max-pod-grace-period eviction-minimum-reclaim eviction-soft
    eviction-soft-grace-period feature-gates file-check-frequency
    hostname-override http-check-frequency image-credential-provider-bin-dir
    image-credential-provider-config image-gc-high-threshold
    image-gc-low-threshold image-pull-progress-deadline image-service-endpoint
    kube-api-burst kube-api-qps kube-reserved kube-reserved-cgroup kubeconfig
    kubelet-cgroups lock-file log-dir log-file log-file-max-size
    logging-format max-open-files max-pods network-plugin network-plugin-mtu
    node-ip node-labels node-status-update-frequency non-masquerade-cidr
    oom-score-adj pod-cidr pod-infra-container-image pod-manifest-path
    pod-max-pids pods-per-core port provider-id read-only-port
    register-with-taints resolv-conf root-dir runtime-cgroups
    runtime-request-timeout seccomp-default-profile
    streaming-connection-idle-timeout sync-frequency system-cgroups
    system-reserved system-reserved-cgroup tls-cert-file tls-cipher-suites
    tls-min-version tls-private-key-file topology-manager-policy v vmodule
    volume-plugin-dir volume-stats-agg-period
    """.split()
)

# Boolean kubelet flags: `--flag` or `--flag=true|false`, never `--flag value`.
IGNORED_BOOL_FLAGS = frozenset(
    """
    alsologtostderr anonymous-auth authentication-token-webhook
    cgroups-per-qos enable-controller-attach-detach enable-debugging-handlers
    enable-server exit-on-lock-contention fail-swap-on
    hairpin-mode-enabled kernel-memcg-notification keep-terminated-pod-volumes
    logtostderr make-iptables-util-chains protect-kernel-defaults
    register-node register-schedulable rotate-certificates
    rotate-server-certificates serialize-image-pulls
    """.split()
)

# Shorthand flags (pflag's -x form): only kubelet's -v.
SHORTHANDS = {"v": "v"}

DEFAULTS = {
    "clusterDNS": [],
    "clusterDomain": "",
    "healthzPort": 10248,
    "healthzBindAddress": "127.0.0.1",
}


class StartError(Exception):
    """Why kubelet cannot start; printed like kubelet's fatal errors."""


def fail(message):
    """Exits 1 the way kubelet does when its command fails."""
    print(f'E kubelet: "command failed" err="{message}"', file=sys.stderr, flush=True)
    sys.exit(1)


def log(message):
    print(f"I kubelet: {message}", file=sys.stderr, flush=True)


def parse_bool(name, value):
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false"):
        return False
    raise StartError(
        f'failed to parse kubelet flag: invalid argument "{value}" for '
        f'"--{name}" flag: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


def split_csv(value):
    """pflag's string slice: a CSV list; an empty value is an empty list."""
    if value == "":
        return []
    return [item.strip() for item in value.split(",")]


def parse_flags(argv):
    """Parses argv like pflag. Returns (flags, cluster_dns or None)."""
    flags = {}
    cluster_dns = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            if args:
                raise StartError(f"kubelet does not take any arguments, got {args}")
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            short, has_value, value = arg[1:].partition("=")
            if short[:1] not in SHORTHANDS:
                raise StartError(
                    "failed to parse kubelet flag: unknown shorthand flag: "
                    f"'{short[:1]}' in {arg}"
                )
            name = SHORTHANDS[short[:1]]
            if not has_value and len(short) > 1:
                has_value, value = "=", short[1:]
        else:
            raise StartError(f"kubelet does not take any arguments, got {[arg] + args}")
        if name in IGNORED_BOOL_FLAGS:
            if has_value:
                parse_bool(name, value)
            continue
        if name not in VALUE_FLAGS and name not in IGNORED_VALUE_FLAGS:
            raise StartError(f"failed to parse kubelet flag: unknown flag: --{name}")
        if not has_value:
            if not args:
                raise StartError(
                    f"failed to parse kubelet flag: flag needs an argument: --{name}"
                )
            value = args.pop(0)
        if name == "cluster-dns":
            # The first occurrence replaces the default, later ones append.
            cluster_dns = (cluster_dns or []) + split_csv(value)
        elif name in VALUE_FLAGS:
            flags[name] = value
    return flags, cluster_dns


def load_document(path):
    """One KubeletConfiguration file (YAML or JSON) as a dict."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise StartError(f'failed to load kubelet config file, path: {path}, error: {e}') from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StartError(
            f"failed to load kubelet config file, path: {path}, error: "
            f"failed to decode: {e}"
        ) from e
    if not isinstance(doc, dict):
        raise StartError(
            f"failed to load kubelet config file, path: {path}, error: "
            "not a KubeletConfiguration object"
        )
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise StartError(
            f"failed to load kubelet config file, path: {path}, error: "
            f'no kind "{doc.get("kind")}" is registered for version '
            f'"{doc.get("apiVersion")}"'
        )
    return doc


def merge(base, over):
    """Merges `over` onto `base`: maps merge, anything else (lists too) replaces."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def config_dir_files(directory):
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise StartError(
            f'failed to walk through kubelet dropin directory "{directory}": {e}'
        ) from e
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".conf")]


def load_config(flags, cluster_dns):
    """The effective configuration and, per field, where it came from."""
    config = {}
    sources = {}
    layers = []
    if "config" in flags:
        layers.append(flags["config"])
    if "config-dir" in flags:
        layers.extend(config_dir_files(flags["config-dir"]))
    for path in layers:
        doc = load_document(path)
        config = merge(config, doc)
        for field in DEFAULTS:
            if field in doc:
                sources[field] = path
    for field, default in DEFAULTS.items():
        if field not in config:
            config[field] = copy.deepcopy(default)
            sources[field] = "default"
    for name in ("cluster-domain", "healthz-port", "healthz-bind-address"):
        if name in flags:
            field = VALUE_FLAGS[name]
            config[field] = flags[name]
            sources[field] = f"flag --{name}"
    if cluster_dns is not None:
        config["clusterDNS"] = cluster_dns
        sources["clusterDNS"] = "flag --cluster-dns"
    check_config(config)
    return config, sources


def check_config(config):
    dns = config["clusterDNS"]
    if not isinstance(dns, list):
        raise StartError("invalid configuration: clusterDNS must be a list")
    for value in dns:
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise StartError(
                f'invalid configuration: option "{value}" specified for '
                "ClusterDNS (--cluster-dns) has to be a valid IP address"
            ) from None
    try:
        port = int(config["healthzPort"])
    except (TypeError, ValueError):
        raise StartError(
            f'invalid argument "{config["healthzPort"]}" for "--healthz-port" flag'
        ) from None
    if not 0 <= port <= 65535:
        raise StartError(
            f"invalid configuration: healthzPort ({port}) must be between 0 "
            "and 65535, inclusive"
        )
    config["healthzPort"] = port
    config["clusterDomain"] = str(config["clusterDomain"])
    config["healthzBindAddress"] = str(config["healthzBindAddress"])


def read_knob(name):
    """A knob file's number, True if present without a number, None if absent."""
    try:
        with open(os.path.join(KNOBS_DIR, name), encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    if text == "":
        return True
    return float(text)


def knobs_apply(config):
    """The failure knobs apply to every start, or, with an `only-with-cluster-dns` knob file
    holding an IP, only to starts whose clusterDNS holds it (a kubelet that breaks on a config)."""
    try:
        with open(os.path.join(KNOBS_DIR, "only-with-cluster-dns"), encoding="utf-8") as f:
            ip = f.read().strip()
    except FileNotFoundError:
        return True
    return ip in config["clusterDNS"]


def write_effective(effective):
    """Counts the start, then publishes effective.json (atomically): whoever sees the new
    effective.json also sees the start counted."""
    os.makedirs(os.path.dirname(STARTS_LOG), exist_ok=True)
    with open(STARTS_LOG, "a", encoding="utf-8") as f:
        dns = ",".join(effective["clusterDNS"])
        f.write(f'{effective["startedAt"]} pid={os.getpid()} clusterDNS={dns}\n')
    os.makedirs(os.path.dirname(EFFECTIVE_FILE), exist_ok=True)
    tmp = f"{EFFECTIVE_FILE}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(effective, f, indent=2, sort_keys=True)
        f.write("\n")
    os.rename(tmp, EFFECTIVE_FILE)


def read_configz_override():
    """The configz-cluster-dns knob's list, or None without the knob."""
    try:
        with open(os.path.join(KNOBS_DIR, "configz-cluster-dns"), encoding="utf-8") as f:
            return split_csv(f.read().strip())
    except FileNotFoundError:
        return None


def make_handler(config, started, healthz_delay):
    configz_override = read_configz_override()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "kubelet-standin"

        def reply(self, code, body, content_type):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/healthz":
                starting = time.monotonic() - started < healthz_delay
                with open(HEALTHZ_LOG, "a", encoding="utf-8") as f:
                    f.write(f"pid={os.getpid()} {503 if starting else 200}\n")
                if starting:
                    self.reply(503, "healthz check failed: starting\n", "text/plain")
                else:
                    self.reply(200, "ok", "text/plain; charset=utf-8")
            elif self.path == "/configz":
                reported = dict(config)
                if configz_override is not None:
                    reported["clusterDNS"] = configz_override
                body = json.dumps({"kubeletconfig": reported}, sort_keys=True)
                self.reply(200, body, "application/json")
            else:
                self.reply(404, "404 page not found\n", "text/plain")

        def log_message(self, *args):
            pass

    return Handler


def serve(config, started, healthz_delay):
    """Starts the healthz/configz server in a thread; logs and goes on if it cannot."""
    port = config["healthzPort"]
    if port == 0:
        return
    address = config["healthzBindAddress"]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    class Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

    try:
        server = Server((address, port), make_handler(config, started, healthz_delay))
    except OSError as e:
        log(f'"Failed to start healthz server" err="{e}"')
        return
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"healthz and configz on {address}:{port}")


# Bytes of an argument that pads the command line back to its old length (see look_like_kubelet).
PADDING_FLAG = "--v="


def look_like_kubelet():
    """Rewrites this process's command line to kubelet's own argv, as a real kubelet has it.

    /proc/<pid>/cmdline of a python script starts with the interpreter; the node program trusts
    only a process whose argv[0] is kubelet. The argument area is this process's own memory (its
    bounds are fields 48 and 49 of /proc/self/stat), rewritten in place through /proc/self/mem.
    It cannot grow or shrink without CAP_SYS_RESOURCE, so the bytes the interpreter's path took
    go to one `--v=000...` argument (klog verbosity 0, as kubelet would accept it).
    """
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # Fields after the ")" start at field 3; arg_start and arg_end are fields 48 and 49.
    arg_start, arg_end = int(fields[45]), int(fields[46])
    size = arg_end - arg_start
    args = [sys.argv[0]] + sys.argv[1:]
    new = b"".join(a.encode() + b"\0" for a in args)
    spare = size - len(new)
    if spare == 0:
        pass
    elif spare >= len(PADDING_FLAG) + 2:
        new += PADDING_FLAG.encode() + b"0" * (spare - len(PADDING_FLAG) - 1) + b"\0"
    else:
        return
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(arg_start)
        mem.write(new)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    look_like_kubelet()
    try:
        flags, cluster_dns = parse_flags(sys.argv[1:])
        config, sources = load_config(flags, cluster_dns)
        if knobs_apply(config) and read_knob("fail-start") is not None:
            raise StartError("fail-start knob: this kubelet cannot start")
    except StartError as e:
        fail(e)
    apply = knobs_apply(config)
    start_delay = read_knob("start-delay") if apply else None
    healthz_delay = read_knob("healthz-delay") if apply else None
    crash_after = read_knob("crash-after") if apply else None
    if isinstance(start_delay, float):
        log(f"start-delay knob: sleeping {start_delay}s")
        time.sleep(start_delay)
    started = time.monotonic()
    effective = {field: config[field] for field in DEFAULTS}
    effective.update(
        {
            "sources": sources,
            "pid": os.getpid(),
            "startedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
    )
    write_effective(effective)
    log(f"started, clusterDNS={config['clusterDNS']} sources={sources}")
    serve(config, started, healthz_delay if isinstance(healthz_delay, float) else 0)
    if isinstance(crash_after, float):
        time.sleep(crash_after)
        fail(f"crash-after knob: crashing after {crash_after}s")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
