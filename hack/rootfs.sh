#!/usr/bin/env bash
# Builds a Debian root filesystem tarball with debootstrap, cached by its package list.
# Usage: hack/rootfs.sh PROFILE   → prints the path of the cached tarball
# Profiles: kind-node (kind's node base), runtime (Node runtime base), postgres, redis, kube-proxy.
source "$(dirname "$0")/lib.sh"

profile="${1:?usage: rootfs.sh PROFILE}"
case "$profile" in
  kind-node) pkgs="systemd,systemd-sysv,containerd,runc,iptables,nftables,iproute2,ca-certificates,procps,kmod,containernetworking-plugins,conntrack,ethtool,socat,util-linux,mount,pigz,libseccomp2,bash,rsync,jq" ;;
  runtime) pkgs="" ;;
  postgres) pkgs="postgresql-15" ;;
  redis) pkgs="redis-server" ;;
  kube-proxy) pkgs="iptables,conntrack,nftables,ipset" ;;
  *) die "unknown rootfs profile '$profile' (kind-node, runtime, postgres, redis, kube-proxy)" ;;
esac

# Service accounts get fixed numeric ids so pod specs can name them (runAsUser).
fix_uid() { # fix_uid USER ID
  chroot "$root" sh -c "old=\$(id -u $1) && groupmod -g $2 $1 && usermod -u $2 $1 &&
    find / -xdev \\( -uid \$old -o -gid \$old \\) -exec chown -h $2:$2 {} +" >/dev/null
}
# Every rootfs: no docs, locales, caches or logs.
slim_common() {
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/lintian \
    "$root"/usr/share/locale/* "$root"/var/log/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* "$root"/root/.cache
}
# Image rootfs: no package manager either (images are rebuilt, never upgraded in place).
slim_image() {
  chroot "$root" dpkg --purge --force-remove-essential --force-depends apt >/dev/null 2>&1 || true
  rm -rf "$root"/var/lib/apt "$root"/var/cache/apt "$root"/etc/apt "$root"/usr/share/keyrings \
    "$root"/usr/share/debconf "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/usr/lib/x86_64-linux-gnu/libapt-*
  slim_common
}
customize_kind-node() { slim_common; }
customize_kube-proxy() { slim_image; }
# Node needs only glibc, libstdc++ and libgcc_s: drop perl (debconf's) and iconv modules.
customize_runtime() {
  slim_image
  rm -rf "$root"/usr/lib/x86_64-linux-gnu/perl-base "$root"/usr/bin/perl* "$root"/usr/lib/x86_64-linux-gnu/gconv \
    "$root"/usr/share/perl5 "$root"/usr/lib/x86_64-linux-gnu/perl
}
# No LLVM JIT (a third of the image): Postgres runs without JIT when its provider is absent.
customize_postgres() {
  fix_uid postgres 999
  slim_image
  rm -rf "$root"/usr/lib/postgresql/15/lib/llvmjit* "$root"/usr/lib/postgresql/15/lib/bitcode \
    "$root"/usr/lib/x86_64-linux-gnu/libLLVM-* "$root"/usr/lib/x86_64-linux-gnu/libz3*
}
customize_redis() { fix_uid redis 999; slim_image; }

# The cache key covers what decides the result: suite, mirror, packages and this profile's recipe
# (only its own functions, so changing one profile's recipe rebuilds only that profile).
key=$( (echo "$DEBIAN_SUITE $DEBIAN_MIRROR $pkgs"; declare -f fix_uid slim_common slim_image "customize_$profile") | sha256sum | cut -c1-12)
out="$CACHE_DIR/rootfs/$profile-$key.tar"
if [ -f "$out" ]; then echo "$out"; exit 0; fi

command -v debootstrap >/dev/null || {
  [ "$(id -u)" = 0 ] || die "debootstrap is missing: sudo apt-get install debootstrap"
  apt_get install -y -qq debootstrap >/dev/null || die "apt-get install debootstrap failed"
}
[ "$(id -u)" = 0 ] || die "building a root filesystem with debootstrap needs root"

mkdir -p "$CACHE_DIR/rootfs" "$CACHE_DIR/debs"
work=$(mktemp -d "$CACHE_DIR/rootfs/.build-$profile-XXXX")
cleanup() { umount -R "$work/root/proc" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
root="$work/root"

include=()
[ -n "$pkgs" ] && include=(--include="$pkgs")
# A kept .deb cache makes a rebuild after a package-list change fast.
# Concurrent debootstraps corrupt a shared .deb cache: take turns.
exec 9>"$CACHE_DIR/debs/.lock"
flock 9
if ! debootstrap --variant=minbase "${include[@]}" --cache-dir="$CACHE_DIR/debs" \
      "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  flock -u 9
  die "debootstrap of '$profile' failed (last lines above); it needs the Debian mirror $DEBIAN_MIRROR"
fi
flock -u 9

"customize_$profile"
tar --numeric-owner -C "$root" -cf "$out.tmp" . && mv "$out.tmp" "$out"
# Older builds of this profile are superseded.
find "$CACHE_DIR/rootfs" -maxdepth 1 -name "$profile-*.tar" ! -path "$out" -delete
echo "$out"
