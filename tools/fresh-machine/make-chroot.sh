#!/usr/bin/env bash
# Build the PRISTINE chroot $ROOT (default /var/tmp/aedaemon-fresh/chroot): a minimal Debian bookworm (debootstrap minbase) plus
# only what a user has before cloning: git, make, python3, ca-certificates.
# NOT installed on purpose: python3-dev, python3-venv, gcc, build-essential (like RPi OS Lite).
# The host's apt sources, resolv.conf and pip config are copied in.
#
#   tools/fresh-machine/make-chroot.sh            build it if absent (as root; debootstrap from Debian)
#   tools/fresh-machine/make-chroot.sh --rebuild  delete and build again
#
# The pristine tree is never used directly by try.sh: each try runs in an overlayfs snapshot.
set -euo pipefail
WORK="${WORK:-/var/tmp/aedaemon-fresh}"
ROOT="${ROOT:-$WORK/chroot}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
LOG="$WORK/logs/make-chroot.log"
mkdir -p "$WORK/logs"
exec > >(tee -a "$LOG") 2>&1
echo "=== make-chroot $(date -u +%FT%TZ)"

umount_all() {  # everything mounted under $1, deepest first
  local r="$1"
  grep -o " $r[^ ]*" /proc/self/mountinfo | sed 's/^ //' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}

if [ "${1:-}" = "--rebuild" ]; then umount_all "$ROOT"; rm -rf "$ROOT"; fi

command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap

if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.pristine-ok" ]; then
  rm -rf "$ROOT"
  if ! debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"; then
    echo "minbase debootstrap failed; trying the default variant"
    rm -rf "$ROOT"
    debootstrap bookworm "$ROOT" "$MIRROR"
  fi

  # host configuration a fresh machine on this network would have
  rm -f "$ROOT/etc/apt/sources.list"
  [ -f /etc/apt/sources.list ] && cp -a /etc/apt/sources.list "$ROOT/etc/apt/"
  mkdir -p "$ROOT/etc/apt/sources.list.d"
  cp -a /etc/apt/sources.list.d/. "$ROOT/etc/apt/sources.list.d/"
  # apt snapshot-date settings: the host's sources are pinned snapshots
  for f in 99artifact-registry 99farm-no-dep11; do
    [ -f "/etc/apt/apt.conf.d/$f" ] && cp -a "/etc/apt/apt.conf.d/$f" "$ROOT/etc/apt/apt.conf.d/"
  done
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  [ -f /etc/pip.conf ] && cp -a /etc/pip.conf "$ROOT/etc/pip.conf"
  if [ -d /etc/xdg/pip ]; then mkdir -p "$ROOT/etc/xdg"; rm -rf "$ROOT/etc/xdg/pip"; cp -a /etc/xdg/pip "$ROOT/etc/xdg/pip"; fi
  # root's user-level pip config (find-links /opt/wheels, the local extra indexes)
  if [ -f /root/.config/pip/pip.conf ]; then
    mkdir -p "$ROOT/root/.config/pip"; cp -a /root/.config/pip/pip.conf "$ROOT/root/.config/pip/"
  fi
  mkdir -p "$ROOT/opt/wheels"
  for d in /opt/pypi*; do [ -d "$d" ] && mkdir -p "$ROOT$d"; done

  mount -t proc proc "$ROOT/proc"
  mount --bind /dev "$ROOT/dev"
  trap 'umount_all "$ROOT"' EXIT
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive /bin/bash -c '
      set -e
      apt-get update
      apt-get install -y --no-install-recommends git make python3 ca-certificates
      apt-get clean
      rm -rf /var/lib/apt/lists/*
      for p in python3-dev python3-venv gcc build-essential libc6-dev portaudio19-dev jackd2; do
        if dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed"; then
          echo "UNEXPECTED: $p is installed in the pristine chroot"; exit 1
        fi
      done
      python3 -c "import ensurepip" 2>/dev/null && { echo "UNEXPECTED: ensurepip present"; exit 1; }
      command -v cc gcc && { echo "UNEXPECTED: a C compiler is present"; exit 1; }
      python3 --version; git --version; make --version | head -1
      dpkg-query -W -f="\${Package}\n" | wc -l | sed "s/^/packages installed: /"
    '
  umount_all "$ROOT"; trap - EXIT
  touch "$ROOT/.pristine-ok"
fi

# /etc/hosts: debootstrap writes none, every installed Debian (installer, cloud and Docker images,
# Raspberry Pi OS) has one; without it "localhost" does not resolve (oscsend localhost ... fails).
if [ ! -s "$ROOT/etc/hosts" ]; then
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' >"$ROOT/etc/hosts"
fi
[ -s "$ROOT/etc/hostname" ] || echo aedaemon-fresh >"$ROOT/etc/hostname"

# The network's TLS-intercepting CAs (this workplace's egress; a real machine on this network
# would have them too). Not part of what the project installs: without them pip cannot reach PyPI.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin update-ca-certificates >/dev/null
fi
chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin python3 -c "
import urllib.request
print('https to PyPI from the chroot:', urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=30).status)"
echo "pristine chroot ready at $ROOT ($(du -sh "$ROOT" | cut -f1))"
