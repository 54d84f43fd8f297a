#!/usr/bin/env bash
#
# Builds the end-to-end toolchain from Go modules into a cache directory outside the repository:
# the Pulumi CLI, the kubernetes provider plugin, a local control plane (kube-apiserver,
# kube-controller-manager, kube-scheduler), etcd, kwok, and the two stand-ins in
# test/e2e/standins (node-cache and the command provider).
#
# Usage:
#   build.sh                  build every missing component
#   build.sh COMPONENT...     build only these components (see --list)
#   build.sh --paths          build nothing; print "name<TAB>absolute path" for every artifact,
#                             and exit 1, naming them on stderr, if any are missing
#   build.sh --list           print the component names
#   build.sh --help
#
# Every version comes from versions.env next to this script. Each component is cached in its own
# directory, ${NODELOCALDNS_E2E_CACHE:-/var/cache/nodelocaldns-e2e}/<component>-<versions>-<hash>,
# where <hash> covers the component's module files (go.mod, go.sum, Go sources) and its build
# flags, so that a change to any of them builds a new directory; an existing directory is reused.
# A build runs in a temporary directory that is renamed into place only when it succeeded.
# Go's module and build caches are the defaults (under $HOME), so later runs reuse them.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_ROOT="$(cd "${SCRIPT_DIR}/../../.." && pwd)"
readonly REPO_ROOT
readonly MODULES_DIR="${SCRIPT_DIR}/modules"
readonly STANDINS_DIR="${REPO_ROOT}/test/e2e/standins"
readonly CACHE_ROOT="${NODELOCALDNS_E2E_CACHE:-/var/cache/nodelocaldns-e2e}"

readonly COMPONENTS=(pulumi kubernetes-provider controlplane etcd kwok node-cache command-provider monitoring-crds)

# The kwok Stage objects the bare kwok binary needs (kwokctl embeds them; kwok itself does not).
readonly KWOK_STAGE_FILES=(
  kustomize/stage/node/fast/node-initialize.yaml
  kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  kustomize/stage/pod/fast/pod-ready.yaml
  kustomize/stage/pod/fast/pod-complete.yaml
  kustomize/stage/pod/fast/pod-delete.yaml
)

# shellcheck source-path=SCRIPTDIR source=versions.env
source "${SCRIPT_DIR}/versions.env"

# The temporary directory of the build in progress and its heartbeat process, for cleanup(),
# and the components whose build failed.
CURRENT_TMP=""
HEARTBEAT_PID=""
FAILED=()

log() {
  echo "[build.sh] $*" >&2
}

die() {
  log "error: $*"
  exit 1
}

usage() {
  awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

cleanup() {
  if [[ -n "${HEARTBEAT_PID}" ]]; then
    kill "${HEARTBEAT_PID}" 2>/dev/null || true
  fi
  if [[ -n "${CURRENT_TMP}" ]]; then
    rm -rf "${CURRENT_TMP}"
  fi
}

# Makes the go command behave the same on every machine: the local toolchain only, no go.work,
# static binaries, and go.mod/go.sum used exactly as committed (-mod=readonly). -buildvcs=false
# because the wrapper modules live inside this repository's git checkout, whose state must not
# leak into the binaries.
setup_go_env() {
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:${PATH}"
  fi
  command -v go >/dev/null || die "go is not on PATH (expected /usr/local/go/bin/go)"
  : "${HOME:?build.sh needs HOME: Go keeps its module and build caches under it}"
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
  export GOFLAGS="-mod=readonly -buildvcs=false"
  local have
  have="$(go env GOVERSION)"
  [[ "${have}" == "${GO_VERSION}" ]] ||
    die "versions.env pins ${GO_VERSION} but go is ${have}; install ${GO_VERSION} or change the pin"
}

is_component() {
  local name="$1" c
  for c in "${COMPONENTS[@]}"; do
    [[ "${c}" == "${name}" ]] && return 0
  done
  return 1
}

# The directory holding a component's go.mod (a wrapper module or one of our stand-ins).
component_dir() {
  case "$1" in
    pulumi | kubernetes-provider | controlplane | etcd | kwok | monitoring-crds) echo "${MODULES_DIR}/$1" ;;
    node-cache) echo "${STANDINS_DIR}/nodecache" ;;
    command-provider) echo "${STANDINS_DIR}/commandprovider" ;;
  esac
}

# The versions a component's cache directory is named after.
component_versions() {
  case "$1" in
    pulumi) echo "${PULUMI_VERSION}" ;;
    kubernetes-provider) echo "${PULUMI_KUBERNETES_VERSION}" ;;
    controlplane) echo "${KUBERNETES_VERSION}" ;;
    etcd) echo "${ETCD_VERSION}" ;;
    kwok) echo "${KWOK_VERSION}" ;;
    node-cache) echo "coredns-${COREDNS_VERSION}" ;;
    command-provider) echo "standin" ;;
    monitoring-crds) echo "${PROMETHEUS_OPERATOR_VERSION}" ;;
  esac
}

# The artifacts of a component, one "name relative-path" pair per line.
component_artifacts() {
  case "$1" in
    pulumi) printf '%s %s\n' pulumi pulumi pulumi-resource-pulumi-nodejs pulumi-resource-pulumi-nodejs ;;
    kubernetes-provider) echo "pulumi-resource-kubernetes pulumi-resource-kubernetes" ;;
    controlplane) printf '%s %s\n' kube-apiserver kube-apiserver kube-controller-manager \
      kube-controller-manager kube-scheduler kube-scheduler ;;
    etcd) echo "etcd etcd" ;;
    kwok) printf '%s %s\n' kwok kwok kwok-stages stages ;;
    node-cache) echo "node-cache node-cache" ;;
    command-provider) echo "pulumi-resource-command pulumi-resource-command" ;;
    monitoring-crds) printf '%s %s\n' servicemonitors-crd servicemonitors.yaml \
      prometheusrules-crd prometheusrules.yaml ;;
  esac
}

# The order --paths prints the artifacts in, with the component that builds each.
readonly PATH_ORDER=(
  pulumi:pulumi
  pulumi-resource-pulumi-nodejs:pulumi
  pulumi-resource-kubernetes:kubernetes-provider
  pulumi-resource-command:command-provider
  kube-apiserver:controlplane
  kube-controller-manager:controlplane
  kube-scheduler:controlplane
  etcd:etcd
  kwok:kwok
  kwok-stages:kwok
  node-cache:node-cache
  servicemonitors-crd:monitoring-crds
  prometheusrules-crd:monitoring-crds
)

# -ldflags for the three Kubernetes binaries: the version variables that Kubernetes' own build
# (hack/lib/version.sh) sets, so that /version reports a real version; the kubernetes provider
# refuses a cluster whose version does not parse.
kube_ldflags() {
  local v="${KUBERNETES_VERSION#v}" flags="-s -w" pkg
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitTreeState=clean"
  done
  echo "${flags}"
}

# Everything besides the module files that decides what a component's build produces: it goes
# into the cache key, so changing a flag here rebuilds the component.
component_recipe() {
  case "$1" in
    pulumi)
      echo "tags=osusergo,grpcnotrace ldflags=-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}"
      echo "plus sdk/v3 nodejs/dist/pulumi-resource-pulumi-nodejs, mode 0755"
      ;;
    kubernetes-provider)
      echo "generate VERSION=${PULUMI_KUBERNETES_VERSION}; main.go copied next to schema-embed.json terraform-mapping-embed.json;"
      echo "ldflags=-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v${PULUMI_KUBERNETES_VERSION}"
      ;;
    controlplane) echo "ldflags=$(kube_ldflags)" ;;
    etcd) echo "ldflags=-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_GIT_SHA}" ;;
    kwok) echo "ldflags=-s -w; stages=${KWOK_STAGE_FILES[*]}" ;;
    node-cache) echo "ldflags=-s -w" ;;
    command-provider) echo "go build -trimpath ." ;;
    monitoring-crds) echo "copy ${MONITORING_CRD_DIR}/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml" ;;
  esac
  echo "go=${GO_VERSION} CGO_ENABLED=0 -trimpath"
}

# A digest of the component's module files (all files in its directory tree except Markdown),
# by relative path, plus its recipe. Prints nothing if the directory does not exist.
component_hash() {
  local name="$1" dir
  dir="$(component_dir "${name}")"
  [[ -d "${dir}" ]] || return 0
  {
    component_recipe "${name}"
    (cd "${dir}" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
  } | sha256sum | cut -c1-12
}

# The cache directory of a component at its current versions and files.
component_cache_dir() {
  local name="$1" hash
  hash="$(component_hash "${name}")"
  echo "${CACHE_ROOT}/${name}-$(component_versions "${name}")-${GO_VERSION}-${hash:-nosource}"
}

# Whether the component's source exists (only the command provider stand-in may be missing).
component_source_missing() {
  local dir
  dir="$(component_dir "$1")"
  if [[ ! -f "${dir}/go.mod" ]]; then
    echo "${dir#"${REPO_ROOT}"/} has no go.mod yet (its Go main module is not written), so $1 cannot be built"
  fi
}

# Fails unless the version the wrapper's go.mod selects for module mod equals want.
check_pin() {
  local dir="$1" mod="$2" want="$3" field="${4:-Version}" got
  got="$(go -C "${dir}" list -m -f "{{.${field}}}" "${mod}")"
  [[ "${got}" == "${want}" ]] ||
    die "${dir#"${REPO_ROOT}"/}/go.mod selects ${mod} ${got}, but versions.env pins ${want}"
}

# Checks that a component's go.mod agrees with versions.env.
check_pins() {
  local name="$1" dir
  dir="$(component_dir "${name}")"
  case "${name}" in
    pulumi)
      check_pin "${dir}" github.com/pulumi/pulumi/pkg/v3 "v${PULUMI_VERSION}"
      check_pin "${dir}" github.com/pulumi/pulumi/sdk/v3 "v${PULUMI_VERSION}"
      ;;
    kubernetes-provider)
      check_pin "${dir}" github.com/pulumi/pulumi-kubernetes/provider/v4 "${PULUMI_KUBERNETES_MODULE_VERSION}"
      # Upstream builds the provider with the sdk of the same release (replace => ../sdk); the
      # provider imports it (pkg/provider/yaml/v2).
      check_pin "${dir}" github.com/pulumi/pulumi-kubernetes/sdk/v4 "v${PULUMI_KUBERNETES_VERSION}"
      ;;
    controlplane)
      check_pin "${dir}" k8s.io/kubernetes "${KUBERNETES_VERSION}"
      check_pin "${dir}" k8s.io/apiserver "${KUBERNETES_STAGING_VERSION}" Replace.Version
      ;;
    etcd) check_pin "${dir}" go.etcd.io/etcd/server/v3 "${ETCD_VERSION}" ;;
    kwok) check_pin "${dir}" sigs.k8s.io/kwok "${KWOK_VERSION}" ;;
    node-cache) check_pin "${dir}" github.com/coredns/coredns "${COREDNS_VERSION}" ;;
    command-provider) ;;
    monitoring-crds) check_pin "${dir}" github.com/prometheus-operator/prometheus-operator "${PROMETHEUS_OPERATOR_VERSION}" ;;
  esac
}

# The directory of module mod as the wrapper in dir selects it, downloaded if need be.
module_dir() {
  local dir="$1" mod="$2"
  go -C "${dir}" mod download "${mod}"
  go -C "${dir}" list -m -f '{{.Dir}}' "${mod}"
}

# --- One function per component: build_<name> DIR OUT WORK builds from the module in DIR into
# --- OUT (which becomes the cache directory) using WORK for scratch files.

build_pulumi() {
  local dir="$1" out="$2"
  go -C "${dir}" build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}" \
    -o "${out}/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  # The dynamic-provider plugin: a shell script of the SDK that runs the program's own
  # @pulumi/pulumi/cmd/dynamic-provider. Pulumi's release archives carry it beside the CLI, where
  # the engine looks for its bundled plugins first (on $PATH it works too, with a warning).
  install -m 0755 \
    "$(module_dir "${dir}" github.com/pulumi/pulumi/sdk/v3)/nodejs/dist/pulumi-resource-pulumi-nodejs" \
    "${out}/pulumi-resource-pulumi-nodejs"
}

# The provider's main.go embeds schema-embed.json and terraform-mapping-embed.json, which
# upstream's `go generate` writes next to it and which are therefore not in the module zip (and
# the module cache is read-only; `go build -overlay` refuses files in it). So main.go is copied
# into WORK/build, a copy of the wrapper module (go.mod and go.sum only), next to the two files
# generated by upstream's generate.go, and built there. Nothing is written into the repository.
build_kubernetes_provider() {
  local dir="$1" out="$2" work="$3" moddir src
  local gen="${work}/generate" build="${work}/build"
  moddir="$(module_dir "${dir}" github.com/pulumi/pulumi-kubernetes/provider/v4)"
  src="${moddir}/cmd/pulumi-resource-kubernetes"
  mkdir -p "${gen}" "${build}"
  cp "${src}/generate.go" "${src}/schema.json" "${src}/terraform-mapping.json" "${gen}/"
  cp "${src}/main.go" "${dir}/go.mod" "${dir}/go.sum" "${build}/"
  chmod u+w "${gen}"/* "${build}"/*
  # generate.go is `//go:build ignore`; naming the file builds it anyway. It is built inside the
  # wrapper module, whose tools.go keeps its one dependency (pkg/v3/codegen/schema) in go.sum;
  # -trimpath lets the provider build below reuse the compiled packages.
  go -C "${dir}" build -trimpath -o "${gen}/generate" "${gen}/generate.go"
  (cd "${gen}" && VERSION="${PULUMI_KUBERNETES_VERSION}" ./generate)
  mv "${gen}/schema-embed.json" "${gen}/terraform-mapping-embed.json" "${build}/"
  go -C "${build}" build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v${PULUMI_KUBERNETES_VERSION}" \
    -o "${out}/pulumi-resource-kubernetes" .
}

# One `go build` of the three main packages compiles their shared packages once.
build_controlplane() {
  local dir="$1" out="$2"
  go -C "${dir}" build -trimpath -ldflags "$(kube_ldflags)" -o "${out}/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
}

# etcd's main package is the root of go.etcd.io/etcd/server/v3 (hence -o: it would be "v3").
build_etcd() {
  local dir="$1" out="$2"
  go -C "${dir}" build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_GIT_SHA}" \
    -o "${out}/etcd" go.etcd.io/etcd/server/v3
}

# kwok plus the Stage objects it needs, from kwok's module zip, in OUT/stages.
build_kwok() {
  local dir="$1" out="$2" kwokdir f
  go -C "${dir}" build -trimpath -ldflags "-s -w" -o "${out}/kwok" sigs.k8s.io/kwok/cmd/kwok
  kwokdir="$(module_dir "${dir}" sigs.k8s.io/kwok)"
  mkdir -p "${out}/stages"
  for f in "${KWOK_STAGE_FILES[@]}"; do
    install -m 0644 "${kwokdir}/${f}" "${out}/stages/"
  done
}

build_node_cache() {
  local dir="$1" out="$2"
  go -C "${dir}" build -trimpath -ldflags "-s -w" -o "${out}/node-cache" .
}

# Nothing to compile: the Prometheus Operator's own CRDs, as its module ships them, so that the
# API server validates our ServiceMonitor and PrometheusRule against the real schemas.
build_monitoring_crds() {
  local dir="$1" out="$2" src
  src="$(module_dir "${dir}" github.com/prometheus-operator/prometheus-operator)/${MONITORING_CRD_DIR}"
  install -m 0644 "${src}/monitoring.coreos.com_servicemonitors.yaml" "${out}/servicemonitors.yaml"
  install -m 0644 "${src}/monitoring.coreos.com_prometheusrules.yaml" "${out}/prometheusrules.yaml"
}

build_command_provider() {
  local dir="$1" out="$2"
  go -C "${dir}" build -trimpath -o "${out}/pulumi-resource-command" .
}

# Logs a line every minute while a long build runs, so that CI logs show it is alive. Runs in
# the background; on TERM it also stops its own sleep, so that nothing is left behind.
heartbeat() {
  local name="$1" start="$2" sleep_pid=""
  trap 'kill "${sleep_pid}" 2>/dev/null; exit 0' TERM
  while true; do
    sleep 60 &
    sleep_pid=$!
    wait "${sleep_pid}" || true
    log "${name}: still building ($(($(date +%s) - start)) s)"
  done
}

# Builds one component unless its cache directory exists; a failure is recorded in FAILED.
build_component() {
  local name="$1" dir target start tmp rc
  dir="$(component_dir "${name}")"
  target="$(component_cache_dir "${name}")"
  if [[ -d "${target}" ]]; then
    log "${name}: up to date, nothing to do (${target})"
    return 0
  fi
  start="$(date +%s)"
  log "${name}: building $(component_versions "${name}") into ${target}"
  tmp="$(mktemp -d "${CACHE_ROOT}/.tmp-${name}.XXXXXX")"
  CURRENT_TMP="${tmp}"
  mkdir "${tmp}/out" "${tmp}/work"
  heartbeat "${name}" "${start}" &
  HEARTBEAT_PID=$!
  # The build runs in a subshell with errexit on, so that any failing step fails the component
  # (errexit would be ignored in a function called as `f || ...`), and so that a failed
  # component does not stop the others. The function name is build_ plus the component name
  # with dashes as underscores.
  set +e
  (
    set -e
    check_pins "${name}"
    "build_${name//-/_}" "${dir}" "${tmp}/out" "${tmp}/work"
  )
  rc=$?
  set -e
  kill "${HEARTBEAT_PID}" 2>/dev/null || true
  wait "${HEARTBEAT_PID}" 2>/dev/null || true
  HEARTBEAT_PID=""
  if ((rc != 0)); then
    rm -rf "${tmp}"
    CURRENT_TMP=""
    log "${name}: FAILED after $(($(date +%s) - start)) s"
    FAILED+=("${name}")
    return 0
  fi
  {
    echo "component=${name}"
    echo "versions=$(component_versions "${name}")"
    echo "go=$(go env GOVERSION)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "seconds=$(($(date +%s) - start))"
  } >"${tmp}/out/BUILDINFO"
  # The rename is what makes the artifact visible: a killed build leaves only a .tmp- directory,
  # which the next run deletes.
  mv -T "${tmp}/out" "${target}"
  rm -rf "${tmp}"
  CURRENT_TMP=""
  log "${name}: built in $(($(date +%s) - start)) s, $(du -sh "${target}" | cut -f1) in ${target}"
}

# --paths: prints every artifact that exists; exits 1 naming the missing ones.
print_paths() {
  local entry name component dir rel missing=() why
  for entry in "${PATH_ORDER[@]}"; do
    name="${entry%%:*}"
    component="${entry#*:}"
    dir="$(component_cache_dir "${component}")"
    rel="$(component_artifacts "${component}" | awk -v n="${name}" '$1 == n { print $2 }')"
    if [[ -e "${dir}/${rel}" ]]; then
      printf '%s\t%s\n' "${name}" "${dir}/${rel}"
    else
      why="$(component_source_missing "${component}")"
      missing+=("${name} (${why:-run: bash ${SCRIPT_DIR#"${REPO_ROOT}"/}/build.sh ${component}})")
    fi
  done
  if ((${#missing[@]} > 0)); then
    log "missing, not built for the current versions and sources:"
    printf '  %s\n' "${missing[@]}" >&2
    return 1
  fi
}

# Warns when the disk holding the cache looks too small for a cold build of everything.
check_disk() {
  local avail_kb
  avail_kb="$(df -Pk "${CACHE_ROOT}" | awk 'NR == 2 { print $4 }')"
  if ((avail_kb < 20 * 1024 * 1024)); then
    log "warning: only $((avail_kb / 1024 / 1024)) GiB free on the disk of ${CACHE_ROOT};" \
      "a cold build of everything needs about 20 GiB there and under ${HOME}"
  fi
}

main() {
  local -a requested=()
  local arg explicit=1
  for arg in "$@"; do
    case "${arg}" in
      --paths)
        (($# == 1)) || die "--paths takes no other arguments"
        print_paths
        return
        ;;
      --list)
        printf '%s\n' "${COMPONENTS[@]}"
        return 0
        ;;
      -h | --help)
        usage
        return 0
        ;;
      -*) die "unknown option ${arg} (see --help)" ;;
      *)
        is_component "${arg}" || die "unknown component ${arg}; components: ${COMPONENTS[*]}"
        requested+=("${arg}")
        ;;
    esac
  done
  if ((${#requested[@]} == 0)); then
    requested=("${COMPONENTS[@]}")
    explicit=0
  fi

  setup_go_env
  mkdir -p "${CACHE_ROOT}"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # One build.sh at a time per cache: two concurrent builds would only slow each other down on
  # a small machine, and holding the lock makes leftover .tmp- directories safe to delete.
  local lock_fd
  exec {lock_fd}>"${CACHE_ROOT}/.lock"
  if ! flock -n "${lock_fd}"; then
    log "waiting for another build.sh that holds ${CACHE_ROOT}/.lock"
    flock "${lock_fd}"
  fi
  rm -rf "${CACHE_ROOT}"/.tmp-*
  check_disk

  local name why start
  start="$(date +%s)"
  for name in "${requested[@]}"; do
    why="$(component_source_missing "${name}")"
    if [[ -n "${why}" ]]; then
      if ((explicit)); then
        log "${name}: FAILED: ${why}"
        FAILED+=("${name}")
      else
        log "${name}: skipped: ${why}"
      fi
      continue
    fi
    build_component "${name}"
  done
  log "done in $(($(date +%s) - start)) s; artifacts: bash ${SCRIPT_DIR#"${REPO_ROOT}"/}/build.sh --paths"
  if ((${#FAILED[@]} > 0)); then
    die "failed: ${FAILED[*]}"
  fi
}

main "$@"
