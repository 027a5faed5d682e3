#!/usr/bin/env bash
# Builds the Kubernetes toolchain from pinned Go modules into the cache (skips what is cached).
# Usage: hack/build-toolchain.sh [component...]   (default: all)
source "$(dirname "$0")/lib.sh"

GO_LDFLAGS_BASE="-s -w"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"

check_proxy() {
  need_go
  # One bounded probe so a missing module proxy is one clear line, not a 10-minute hang.
  local proxy; proxy=$(go env GOPROXY | cut -d, -f1)
  [ "$proxy" = off ] && die "GOPROXY is off: the toolchain is built from Go modules; set GOPROXY to a reachable module proxy"
  if [[ "$proxy" == http* ]] && ! curl -fs -m 15 -o /dev/null "$proxy/sigs.k8s.io/kind/@v/$KIND_VERSION.info"; then
    die "the Go module proxy $proxy does not answer: it is needed once to build the Kubernetes toolchain (cached afterwards in $CACHE_DIR)"
  fi
}

# k8s.io/kubernetes pins its staging modules at v0.0.0, so build through a wrapper module that
# replaces each with the published v0.<minor>.<patch> (kubernetes/kubernetes#79384).
STAGING="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller"

build_kubernetes() {
  local out="$CACHE_DIR/kubernetes-$KUBERNETES_VERSION"
  cached "$out" && return 0
  local mod="$CACHE_DIR/src/kubernetes-$KUBERNETES_VERSION"
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  rm -rf "$out" && mkdir -p "$out/bin" "$mod"
  {
    echo "module bgtask.local/k8s-build"
    echo "go 1.24"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    for m in $STAGING; do echo "replace k8s.io/$m => k8s.io/$m $staging_version"; done
  } >"$mod/go.mod"
  local minor; minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  local ld="$GO_LDFLAGS_BASE"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$mod" && go build -mod=mod -tags selinux,notest -ldflags "$ld" -o "$out/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl)
  mark_complete "$out"
}

build_etcd() {
  local out="$CACHE_DIR/etcd-$ETCD_VERSION"
  cached "$out" && return 0
  local mod="$CACHE_DIR/src/etcd-$ETCD_VERSION"
  rm -rf "$out" && mkdir -p "$out/bin" "$mod"
  # etcd's server module has replace directives, so `go install` refuses it: wrap it.
  {
    echo "module bgtask.local/etcd-build"
    echo "go 1.24"
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do echo "replace go.etcd.io/etcd/$m => go.etcd.io/etcd/$m $ETCD_VERSION"; done
  } >"$mod/go.mod"
  (cd "$mod" && go build -mod=mod -ldflags "$GO_LDFLAGS_BASE" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3)
  mark_complete "$out"
}

go_install() { # go_install DIR PKG@VERSION [ldflags]
  local out="$1" pkg="$2" ld="${3:-}"
  cached "$out" && return 0
  rm -rf "$out" && mkdir -p "$out/bin"
  GOBIN="$out/bin" go install -ldflags "$GO_LDFLAGS_BASE $ld" "$pkg"
  mark_complete "$out"
}

build_kind() { go_install "$CACHE_DIR/kind-$KIND_VERSION" "sigs.k8s.io/kind@$KIND_VERSION"; }
build_crictl() { go_install "$CACHE_DIR/crictl-$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
  "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"; }
build_coredns() { go_install "$CACHE_DIR/coredns-$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION"; }
build_helm() { go_install "$CACHE_DIR/helm-$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"; }

build_promtool() {
  local out="$CACHE_DIR/promtool-$PROMETHEUS_VERSION"
  cached "$out" && return 0
  local mod="$CACHE_DIR/src/promtool-$PROMETHEUS_VERSION"
  rm -rf "$out" && mkdir -p "$out/bin" "$mod"
  # A wrapper module, as for etcd: go install refuses a module whose go.mod has replace directives.
  printf 'module bgtask.local/promtool-build\ngo 1.24\nrequire github.com/prometheus/prometheus %s\n' "$PROMETHEUS_VERSION" >"$mod/go.mod"
  (cd "$mod" && go build -mod=mod -ldflags "$GO_LDFLAGS_BASE -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
      -o "$out/bin/promtool" github.com/prometheus/prometheus/cmd/promtool)
  mark_complete "$out"
}

build_pause() {
  local out="$CACHE_DIR/pause-$PAUSE_VERSION"
  cached "$out" && return 0
  build_kubernetes # pause.c ships in the k8s.io/kubernetes module
  local src; src="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause/linux/pause.c"
  [ -f "$src" ] || die "pause.c not found at $src"
  command -v gcc >/dev/null || die "gcc is needed to build the pause binary (apt-get install gcc libc6-dev)"
  rm -rf "$out" && mkdir -p "$out/bin"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$out/bin/pause" "$src"
  strip "$out/bin/pause"
  mark_complete "$out"
}

ALL="kubernetes etcd pause coredns crictl kind helm promtool"
main() {
  local wanted="${*:-$ALL}" missing=""
  for c in $wanted; do dir_of "$c" >/dev/null || exit 1; done
  for c in $wanted; do cached "$CACHE_DIR/$(dir_of "$c")" || missing="$missing $c"; done
  [ -z "$missing" ] && return 0
  # Concurrent callers (a test tier, make up) wait for one build instead of racing it.
  exec 7>"$CACHE_DIR/toolchain.lock"
  flock 7
  missing=""
  for c in $wanted; do cached "$CACHE_DIR/$(dir_of "$c")" || missing="$missing $c"; done
  [ -z "$missing" ] && return 0
  check_proxy
  for c in $missing; do step "build $c" "build_$c"; done
}
dir_of() {
  case "$1" in
    kubernetes) echo "kubernetes-$KUBERNETES_VERSION" ;; etcd) echo "etcd-$ETCD_VERSION" ;;
    pause) echo "pause-$PAUSE_VERSION" ;; coredns) echo "coredns-$COREDNS_VERSION" ;;
    crictl) echo "crictl-$CRICTL_VERSION" ;; kind) echo "kind-$KIND_VERSION" ;; helm) echo "helm-$HELM_VERSION" ;;
    promtool) echo "promtool-$PROMETHEUS_VERSION" ;;
    *) die "unknown component $1 (known: $ALL)" ;;
  esac
}
main "$@"
