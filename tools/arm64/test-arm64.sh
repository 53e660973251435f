#!/usr/bin/env bash
# `make test-arm64`: the install path and the numerics checked on arm64 (a Raspberry Pi 4's
# Cortex-A72), under emulation, as root, on an x86 Debian/Ubuntu host:
#   1. once (cached): a Debian bookworm arm64 userland $ROOT, built with debootstrap and
#      qemu-user-static (binfmt_misc registered with the F flag: the interpreter is opened at
#      registration, so nothing is copied into the userland); only git, make, python3 and
#      ca-certificates, like the fresh-machine chroot (tools/fresh-machine/make-chroot.sh)
#   2. every run: the current commit is cloned into it (kept: later runs fetch and check out)
#      and installed with the repository's own `.ci/setup dev` — the install path under test:
#      Debian packages, venv, PyAudio and the C extension are built inside the arm64 userland
#   3. the DSP, engine, model, render and protocol tests under arm64 ($TESTS; jackd's dummy
#      driver runs under qemu-user, so the PortAudio/JACK tests run too; no SCHED_FIFO inside)
#   4. the same renders (tools/arm64/renders.py) with the x86 venv (.venv, on a clone of the
#      same commit) and inside arm64, compared sample by sample, and the decoders' outputs on
#      the same latents (tools/arm64/compare.py)
# Emulation: QEMU_CPU=cortex-a72 (QEMU's default `max` CPU has SVE/SME, and onnxruntime's int8
# kernels give wrong output on it); a Raspberry Pi 4's /proc/cpuinfo (tools/arm64/cpuinfo-pi4)
# is bound over /proc/cpuinfo (onnxruntime's cpuinfo reads it and would see the x86 host's).
#
#   tools/arm64/test-arm64.sh            build the userland if absent, then test HEAD
#   tools/arm64/test-arm64.sh --rebuild  delete the userland (and its clone and venv) first
#   env: WORK=/var/tmp/aedaemon-arm64  MIRROR=http://deb.debian.org/debian  COMMIT=HEAD
#        TESTS="tests/test_native.py ..."  TEST_TIMEOUT=5400  SKIP_RENDERS=1  FRESH=1 (new clone
#        and venv, keep the userland)  TOL_LSB=2 (renders must agree within this many 16-bit LSB)
# Logs: $WORK/logs/<stamp>-<sha>/ (summary.txt; the summary is printed at the end too).
# Exit status: 0 when the install, the tests and the render comparison all pass.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$SRC/tools/arm64"
WORK="${WORK:-/var/tmp/aedaemon-arm64}"
ROOT="${ROOT:-$WORK/rootfs}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
TEST_TIMEOUT="${TEST_TIMEOUT:-5400}"
TOL_LSB="${TOL_LSB:-2}"
TESTS_DEFAULT="tests/test_native.py tests/test_dsp.py tests/test_phase_equivalence.py
  tests/test_shaping_equivalence.py tests/test_pitch_equivalence.py tests/test_engine.py
  tests/test_model_and_cli.py tests/test_render_cli.py tests/test_precision_auto.py
  tests/test_protocol.py tests/test_engine_faults.py"
TESTS="${TESTS:-$TESTS_DEFAULT}"

[ "$(id -u)" -eq 0 ] || { echo "test-arm64: needs root (debootstrap, chroot, mounts): sudo make test-arm64" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || echo "test-arm64: host is $(uname -m), not x86_64: the comparison is against this host" >&2

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}'; }
T_ALL="$(now)"
SHA="$(git -C "$SRC" rev-parse --verify "${COMMIT:-HEAD}^{commit}")"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGD="$WORK/logs/$STAMP-${SHA:0:7}"
mkdir -p "$LOGD"
SUM="$LOGD/summary.txt"
note() { echo "test-arm64: $*" | tee -a "$SUM"; }
FAIL=()

umount_all() {  # everything mounted under $1, deepest first
  local r="$1"
  { grep -o " $r[^ ]*" /proc/self/mountinfo || true; } | sed 's/^ //' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}
kill_root_procs() {  # every process whose root is the userland (all started by this script)
  local r="$1" sig="${2:-TERM}" p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] && kill -"$sig" "${p#/proc/}" 2>/dev/null || true
  done
}

note "commit $SHA ($(git -C "$SRC" log -1 --format=%s "$SHA" | cut -c1-90))"
[ -z "${COMMIT:-}" ] && [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] \
  && note "note: the work tree has uncommitted changes; they are NOT tested (only $SHA is)"
note "logs $LOGD"

# ---- host tools -------------------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
  note "installing on the host: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$LOGD/host-apt.log" 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOGD/host-apt.log" 2>&1;
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOGD/host-apt.log" 2>&1; } \
    || { tail -20 "$LOGD/host-apt.log" >&2; echo "test-arm64: apt-get install ${need[*]} failed" >&2; exit 1; }
fi

# ---- binfmt_misc: aarch64 ELF files run through qemu-aarch64-static, flag F -------------------
BINFMT=/proc/sys/fs/binfmt_misc
[ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT"
if [ -e "$BINFMT/qemu-aarch64" ] && ! grep -q '^flags:.*F' "$BINFMT/qemu-aarch64"; then
  echo -1 >"$BINFMT/qemu-aarch64"   # registered without F: it would not work inside a chroot
fi
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' >"$BINFMT/register"
fi
grep -q '^enabled' "$BINFMT/qemu-aarch64" || echo 1 >"$BINFMT/qemu-aarch64"
note "binfmt: $(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64") flags $(sed -n 's/^flags: //p' "$BINFMT/qemu-aarch64"); $(qemu-aarch64-static --version | head -1)"

# ---- 1. the arm64 userland (cached) ----------------------------------------------------------
wipe_root() {  # never rm -rf through a mount (/dev, /sys, the wheel folders)
  umount_all "$ROOT"
  if grep -q " $ROOT[/ ]" /proc/self/mountinfo; then echo "test-arm64: still mounted under $ROOT; not deleting" >&2; exit 1; fi
  rm -rf "$ROOT"
}
if [ "${1:-}" = "--rebuild" ]; then wipe_root; fi
if [ ! -f "$ROOT/.userland-ok" ]; then
  t0="$(now)"
  note "building the arm64 userland $ROOT (debootstrap $SUITE arm64, once; log $LOGD/debootstrap.log)"
  wipe_root
  debootstrap --arch=arm64 --variant=minbase --include=git,make,python3,ca-certificates \
    "$SUITE" "$ROOT" "$MIRROR" >"$LOGD/debootstrap.log" 2>&1 \
    || { tail -20 "$LOGD/debootstrap.log" >&2; echo "test-arm64: debootstrap failed" >&2; exit 1; }
  # the host's apt and pip configuration (a machine on this network would have it)
  rm -f "$ROOT/etc/apt/sources.list"
  [ -f /etc/apt/sources.list ] && cp -a /etc/apt/sources.list "$ROOT/etc/apt/"
  mkdir -p "$ROOT/etc/apt/sources.list.d"
  for f in /etc/apt/sources.list.d/*; do   # Debian's own sources only (others may be amd64-only)
    [ -f "$f" ] && grep -q 'debian.org' "$f" && cp -a "$f" "$ROOT/etc/apt/sources.list.d/"
  done
  if [ -z "$(cat "$ROOT"/etc/apt/sources.list "$ROOT"/etc/apt/sources.list.d/* 2>/dev/null | grep -v '^#')" ]; then
    echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
  fi
  for f in 99artifact-registry 99farm-no-dep11; do
    [ -f "/etc/apt/apt.conf.d/$f" ] && cp -a "/etc/apt/apt.conf.d/$f" "$ROOT/etc/apt/apt.conf.d/"
  done
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  [ -f /etc/pip.conf ] && cp -a /etc/pip.conf "$ROOT/etc/pip.conf"
  if [ -d /etc/xdg/pip ]; then mkdir -p "$ROOT/etc/xdg"; rm -rf "$ROOT/etc/xdg/pip"; cp -a /etc/xdg/pip "$ROOT/etc/xdg/pip"; fi
  if [ -f /root/.config/pip/pip.conf ]; then
    mkdir -p "$ROOT/root/.config/pip"; cp -a /root/.config/pip/pip.conf "$ROOT/root/.config/pip/"
  fi
  [ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
  echo aedaemon-arm64 >"$ROOT/etc/hostname"
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then  # this network's TLS CAs
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU=cortex-a72 update-ca-certificates >/dev/null
  fi
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin QEMU_CPU=cortex-a72 /bin/sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/*'
  touch "$ROOT/.userland-ok"
  note "userland built in $(since "$t0") s ($(du -sxh "$ROOT" 2>/dev/null | cut -f1))"
else
  note "userland cached: $ROOT (built $(date -u -r "$ROOT/.userland-ok" +%FT%TZ))"
fi

# ---- the mounts of a run (undone on exit) ---------------------------------------------------
cp "$HERE/cpuinfo-pi4" "$WORK/cpuinfo-pi4"
cleanup() {
  kill_root_procs "$ROOT" TERM; sleep 1; kill_root_procs "$ROOT" KILL
  umount_all "$ROOT"
}
trap cleanup EXIT
umount_all "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --bind "$WORK/cpuinfo-pi4" "$ROOT/proc/cpuinfo"      # a Pi 4's, not the x86 host's
mount --rbind /sys "$ROOT/sys"; mount --make-rslave "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/dev/shm"   # its own: not the host's jackd
for d in /opt/wheels /opt/pypi*; do   # the local wheel folders the host's pip config names
  [ -d "$d" ] || continue
  mkdir -p "$ROOT$d"; mount --bind "$d" "$ROOT$d"; mount -o remount,bind,ro "$ROOT$d"
done
mkdir -p "$ROOT/mnt/aedaemon-src"
mount --bind "$SRC" "$ROOT/mnt/aedaemon-src"; mount -o remount,bind,ro "$ROOT/mnt/aedaemon-src"

ENVV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root
      LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 QEMU_CPU=cortex-a72)
while IFS= read -r kv; do ENVV+=("$kv"); done < <(env | grep -E '^(PIP_[A-Z_]*|SSL_CERT_[A-Z]*|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)=' || true)
# Without CAP_SYS_NICE: no SCHED_FIFO inside (.ci/jackd then starts jackd --no-realtime, the daemon
# runs its threads at normal priority): an emulated real-time thread that is always behind would
# take a whole core of the host away from everything else.
inroot() { setpriv --bounding-set -sys_nice chroot "$ROOT" /usr/bin/env -i "${ENVV[@]}" /bin/bash -lc "$1"; }
step() {  # step NAME 'command in the userland': output to $LOGD/NAME.log, duration noted
  local name="$1" cmd="$2" t0 rc=0; t0="$(now)"
  inroot "$cmd" >"$LOGD/$name.log" 2>&1 || rc=$?
  STEP_S="$(since "$t0")"; return "$rc"
}

inroot 'uname -m; grep -m1 "CPU part" /proc/cpuinfo; grep -m1 ^Model /proc/cpuinfo' >"$LOGD/machine.txt" 2>&1 || true
note "userland: $(paste -sd' ' "$LOGD/machine.txt") (QEMU_CPU=cortex-a72)"

# ---- 2. clone the commit and install it with .ci/setup dev -----------------------------------
CLONE=/root/aedaemon
if [ "${FRESH:-0}" = 1 ]; then rm -rf "$ROOT$CLONE"; fi
if [ ! -d "$ROOT$CLONE/.git" ]; then
  what="git clone -q --no-local /mnt/aedaemon-src $CLONE && cd $CLONE"
else  # kept from the last run with its venv and built extension: only the commit changes
  what="cd $CLONE && git fetch -q --no-tags /mnt/aedaemon-src '+refs/heads/*:refs/remotes/origin/*'"
fi
if ! step clone "git config --global --add safe.directory '*'; $what && git checkout -q --detach $SHA && git clean -xdfq -e .venv -e 'aedaemon/dsp/*.so' -e '*.egg-info' -e build && git log -1 --format=%H"; then
  note "FAIL: clone/checkout of $SHA (see $LOGD/clone.log)"; tail -n 5 "$LOGD/clone.log"; exit 1
fi
note "clone at $(tail -1 "$LOGD/clone.log") (${STEP_S} s)"
umount "$ROOT/mnt/aedaemon-src"

note "installing: .ci/setup dev inside arm64 (apt packages, venv, PyAudio and the C extension built here; log $LOGD/setup.log)"
if step setup "cd $CLONE && .ci/setup dev"; then
  note "setup: ok in ${STEP_S} s$(grep -q 'setup: installing' "$LOGD/setup.log" || echo ' (nothing to install: cached)')"
  { grep '^setup:' "$LOGD/setup.log" || true; } | sed 's/^/    /' | tee -a "$SUM"
else
  note "FAIL: .ci/setup dev after ${STEP_S} s:"; tail -25 "$LOGD/setup.log" | sed 's/^/    /' | tee -a "$SUM"; FAIL+=(setup)
fi
if [ ${#FAIL[@]} -eq 0 ]; then
  if step versions "cd $CLONE && .venv/bin/python - <<'PY'
import platform, numpy, scipy, onnxruntime, pyaudio
import aedaemon.dsp._native as n
print('python', platform.python_version(), platform.machine(), '| numpy', numpy.__version__, '| scipy', scipy.__version__,
      '| onnxruntime', onnxruntime.__version__, '| pyaudio', pyaudio.__version__, '(' + pyaudio.get_portaudio_version_text() + ')')
print('C extension', n.__file__)
assert onnxruntime.__version__ != '1.21.0', 'onnxruntime 1.21.0 crashes on a Pi 4'
PY"; then
    sed 's/^/    /' "$LOGD/versions.log" | tee -a "$SUM"
  else
    note "FAIL: the installed package does not import:"; tail -15 "$LOGD/versions.log" | sed 's/^/    /' | tee -a "$SUM"; FAIL+=(import)
  fi
fi

# ---- 3. the tests under arm64 ----------------------------------------------------------------
# jackd runs under qemu-user (dummy driver, started by the tests through .ci/jackd, in the
# userland's own /dev/shm): the tests that use PortAudio devices or the daemon on JACK run too.
TESTS_RESULT="not run"
installed=1; case " ${FAIL[*]-} " in *" setup "*|*" import "*) installed=0 ;; esac
if [ "$installed" = 1 ]; then
  note "tests under arm64 (timeout ${TEST_TIMEOUT} s; log $LOGD/tests.log): $(echo $TESTS | wc -w) files"
  rc=0
  step tests "cd $CLONE && timeout -s INT -k 30 $TEST_TIMEOUT .venv/bin/python -m pytest -q -p no:cacheprovider -rfEs --durations=10 $(echo $TESTS)" || rc=$?
  TESTS_RESULT="$(grep -E '(passed|failed|error)' "$LOGD/tests.log" | tail -1 | tr -d '=' | sed 's/^ *//')"
  note "tests: rc=$rc in ${STEP_S} s: ${TESTS_RESULT:-no summary line}"
  grep -E '^(FAILED|ERROR) ' "$LOGD/tests.log" | head -30 | sed 's/^/    /' | tee -a "$SUM" || true
  [ "$rc" -eq 0 ] || FAIL+=(tests)
fi

# ---- 4. renders: x86 (this host's .venv, the same commit) against arm64 ----------------------
RENDER_RESULT="not run"
installed=1; case " ${FAIL[*]-} " in *" setup "*|*" import "*) installed=0 ;; esac
if [ "${SKIP_RENDERS:-0}" != 1 ] && [ "$installed" = 1 ]; then
  HOSTPY="$SRC/.venv/bin/python"
  X86="$WORK/x86-src"   # the commit, not the work tree (others may be editing it)
  rm -rf "$X86"; git clone -q --no-local "$SRC" "$X86"; git -C "$X86" checkout -q --detach "$SHA"
  if [ ! -x "$HOSTPY" ]; then
    note "FAIL: no x86 venv at $SRC/.venv (run make setup or make test first)"; FAIL+=(renders)
  else
    t0="$(now)"; rc=0
    (cd "$X86" && "$HOSTPY" setup.py -q build_ext --inplace >"$LOGD/x86-build.log" 2>&1 \
      && PYTHONPATH="$X86" "$HOSTPY" tools/arm64/renders.py "$WORK/renders-x86" >"$LOGD/renders-x86.log" 2>&1) || rc=$?
    note "renders on x86 ($HOSTPY, commit ${SHA:0:7}): rc=$rc in $(since "$t0") s"
    [ "$rc" -eq 0 ] || { tail -n 15 "$LOGD/x86-build.log" "$LOGD/renders-x86.log"; FAIL+=(renders); }
    rc=0
    step renders-arm64 "cd $CLONE && rm -rf /root/renders && .venv/bin/python tools/arm64/renders.py /root/renders" || rc=$?
    note "renders on arm64: rc=$rc in ${STEP_S} s"
    [ "$rc" -eq 0 ] || { tail -n 15 "$LOGD/renders-arm64.log"; FAIL+=(renders); }
    rm -rf "$WORK/renders-arm64"; cp -a "$ROOT/root/renders" "$WORK/renders-arm64" 2>/dev/null || true
    for m in x86 arm64; do
      [ -f "$WORK/renders-$m/manifest.json" ] && "$HOSTPY" -c "import json,sys; m=json.load(open(sys.argv[1])); print('    %s: python %s, numpy %s, onnxruntime %s, C extension %s' % (m['machine'], m['python'], m['numpy'], m['onnxruntime'], m['native'].rsplit('/',1)[-1]))" "$WORK/renders-$m/manifest.json" | tee -a "$SUM"
    done
    rc=0
    "$HOSTPY" "$HERE/compare.py" "$WORK/renders-x86" "$WORK/renders-arm64" --tol-lsb "$TOL_LSB" \
      --json "$LOGD/compare.json" >"$LOGD/compare.txt" 2>&1 || rc=$?
    note "x86 vs arm64, 32-bit float renders (max |diff| in 16-bit LSB; tolerance $TOL_LSB LSB):"
    sed 's/^/    /' "$LOGD/compare.txt" | tee -a "$SUM"
    RENDER_RESULT="$([ "$rc" -eq 0 ] && echo "all within $TOL_LSB LSB" || echo FAILED)"
    [ "$rc" -eq 0 ] || FAIL+=(renders)
  fi
fi

# ---- summary -------------------------------------------------------------------------------
echo | tee -a "$SUM"
note "==== summary (${SHA:0:7}, $(since "$T_ALL") s in all; logs $LOGD)"
note "  install (.ci/setup dev on arm64): $([ "$installed" = 1 ] && echo ok || echo FAILED)"
note "  tests: $TESTS_RESULT"
note "  renders x86 vs arm64: $RENDER_RESULT"
if [ ${#FAIL[@]} -eq 0 ]; then note "  RESULT: PASS"; exit 0; fi
note "  RESULT: FAIL (${FAIL[*]})"; exit 1
