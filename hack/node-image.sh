#!/usr/bin/env bash
# Builds, offline, the kind node image for $KUBERNETES_VERSION: kind's base (a debootstrap rootfs
# plus kind's base files, read from the kind Go module), the component images kubeadm expects
# (from our own binaries) preloaded into the node's containerd. Prints the image tag.
# Each image is tagged with a hash of its inputs: a change rebuilds it and nothing else.
source "$(dirname "$0")/lib.sh"

REG=registry.k8s.io
KIND_MOD="$(go env GOMODCACHE 2>/dev/null)/sigs.k8s.io/kind@$KIND_VERSION"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
file_hash() { sha256sum "$@" | sha256sum | cut -c1-12; }

# docker import of a folder as an image; extra args are --change lines.
import_dir() { # import_dir DIR TAG [--change ...]
  local dir="$1" tag="$2"; shift 2
  tar --numeric-owner -C "$dir" -cf - . | docker import "$@" - "$tag" >/dev/null
}

binary_image() { # binary_image NAME BINARY TAG [ROOTFS_TAR] : /usr/local/bin/NAME in a scratch or given rootfs
  local name="$1" bin="$2" tag="$3" rootfs="${4:-}"
  image_exists "$tag" && return 0
  local d; d=$(mktemp -d)
  [ -n "$rootfs" ] && tar -C "$d" -xf "$rootfs"
  mkdir -p "$d/usr/local/bin" "$d/tmp" && chmod 1777 "$d/tmp"
  install -m 0755 "$bin" "$d/usr/local/bin/$name"
  import_dir "$d" "$tag" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENTRYPOINT [\"/usr/local/bin/$name\"]"
  rm -rf "$d"
}

component_images() {
  local v="$KUBERNETES_VERSION"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    binary_image "$c" "$K8S_BIN/$c" "$REG/$c:$v"
  done
  binary_image kube-proxy "$K8S_BIN/kube-proxy" "$REG/kube-proxy:$v" "$("$HACK_DIR/rootfs.sh" kube-proxy)"
  binary_image etcd "$ETCD_BIN/etcd" "$REG/etcd:$ETCD_IMAGE_TAG"
  if ! image_exists "$REG/coredns/coredns:$COREDNS_VERSION"; then
    local d; d=$(mktemp -d); install -m 0755 "$COREDNS_BIN/coredns" "$d/coredns"
    import_dir "$d" "$REG/coredns/coredns:$COREDNS_VERSION" --change 'ENTRYPOINT ["/coredns"]'; rm -rf "$d"
  fi
  if ! image_exists "$REG/pause:$PAUSE_VERSION"; then
    local d; d=$(mktemp -d); install -m 0755 "$PAUSE_BIN/pause" "$d/pause"
    import_dir "$d" "$REG/pause:$PAUSE_VERSION" --change 'ENTRYPOINT ["/pause"]'; rm -rf "$d"
  fi
}
component_tags() {
  local v="$KUBERNETES_VERSION"
  echo "$REG/kube-apiserver:$v $REG/kube-controller-manager:$v $REG/kube-scheduler:$v $REG/kube-proxy:$v" \
    "$REG/etcd:$ETCD_IMAGE_TAG $REG/coredns/coredns:$COREDNS_VERSION $REG/pause:$PAUSE_VERSION"
}

# kind's base image, as its images/base/Dockerfile builds it, on Debian's containerd and runc.
base_image() {
  [ -d "$KIND_MOD/images/base/files" ] || (cd "$CACHE_DIR" && GOFLAGS=-mod=mod go mod download "sigs.k8s.io/kind@$KIND_VERSION")
  local rootfs; rootfs=$("$HACK_DIR/rootfs.sh" kind-node)
  local tag="bgtask.local/kind-base:$( (echo "$rootfs"; declare -f base_image configure_base; cat "$CRICTL_BIN/crictl" | sha256sum) | sha256sum | cut -c1-12)"
  if ! image_exists "$tag"; then
    local d; d=$(mktemp -d)
    tar -C "$d" -xf "$rootfs"
    configure_base "$d"
    import_dir "$d" "$tag" --change 'ENV container=docker' \
      --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
    rm -rf "$d"
  fi
  echo "$tag"
}
configure_base() {
  local r="$1" f="$KIND_MOD/images/base/files"
  install -m 0755 "$f"/usr/local/bin/* "$r/usr/local/bin/"
  mkdir -p "$r/kind/bin" "$r/etc/kubernetes/manifests" "$r/opt/cni" "$r/etc/cni/net.d"
  cp -r "$f/kind/." "$r/kind/" && chmod -R a+rX "$r/kind" && chmod 0755 "$r"/kind/bin/*
  install -m 0644 "$f/etc/crictl.yaml" "$r/etc/crictl.yaml"
  mkdir -p "$r/etc/containerd" "$r/etc/default" "$r/etc/sysctl.d" "$r/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$f"/etc/containerd/* "$r/etc/containerd/"
  install -m 0644 "$f"/etc/default/* "$r/etc/default/"
  install -m 0644 "$f"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  find "$f/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 {} "$r/etc/systemd/system/" \;
  install -m 0644 "$f"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
  # Debian puts containerd in /usr/bin and CNI plugins in /usr/lib/cni; kind expects other paths.
  ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
  ln -sfn /usr/lib/cni "$r/opt/cni/bin"
  install -m 0755 "$CRICTL_BIN/crictl" "$r/usr/local/bin/crictl"
  # Same systemd trimming as kind's Dockerfile.
  find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
    "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  # containerd settings: our pause image; restrict_oom_score_adj because pods' negative
  # oom_score_adj needs CAP_SYS_RESOURCE, which sandboxes like ours lack; no fuse-overlayfs plugin.
  sed -i -e "s|sandbox_image = .*|sandbox_image = \"$REG/pause:$PAUSE_VERSION\"|" \
    -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
    -e '/\[proxy_plugins\]/,/address = /d' "$r/etc/containerd/config.toml"
  chroot "$r" ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
  # One node needs no CNI daemon: a static bridge network (kind's kindnet is disabled in the cluster config).
  cat >"$r/etc/cni/net.d/10-bgtask-bridge.conflist" <<'JSON'
{
  "cniVersion": "0.4.0",
  "name": "bgtask",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

node_image() {
  local base; base=$(base_image)
  component_images
  local tags; tags=$(component_tags)
  local ids; ids=$(for t in $tags; do docker image inspect -f '{{.Id}}' "$t"; done)
  local bins="$K8S_BIN/kubeadm $K8S_BIN/kubelet $K8S_BIN/kubectl"
  local tag="bgtask.local/kind-node:$KUBERNETES_VERSION-$( (echo "$base $ids"; file_hash $bins; declare -f node_image) | sha256sum | cut -c1-12)"
  if ! image_exists "$tag"; then
    local c="bgtask-node-build-$$"
    trap 'docker rm -f '"$c"' >/dev/null 2>&1 || true' EXIT INT TERM
    docker run -d --name "$c" --privileged --entrypoint=sleep "$base" infinity >/dev/null
    for b in $bins; do docker cp "$b" "$c:/usr/bin/"; done
    docker exec "$c" sh -c "mkdir -p /kind && echo $KUBERNETES_VERSION > /kind/version"
    docker exec -d "$c" sh -c 'containerd >/var/log/containerd-build.log 2>&1'
    retry_until 30 "containerd in the build container" docker exec "$c" ctr version ||
      { docker exec "$c" tail -n 20 /var/log/containerd-build.log >&2; die "containerd did not start in the node build container"; }
    # shellcheck disable=SC2086
    docker save $tags | docker exec -i "$c" ctr -n k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
    docker exec "$c" sh -c 'pkill containerd; rm -f /var/log/containerd-build.log' || true
    sleep 1
    docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$c" "$tag" >/dev/null
    docker rm -f "$c" >/dev/null
    trap - EXIT INT TERM
  fi
  echo "$tag"
}

tag=$(node_image)
prune_superseded "$tag"
prune_superseded "$(base_image)"
echo "$tag"
