#!/usr/bin/env bash
# One "fresh machine" try of aedaemon at COMMIT (default: HEAD of this repository), as root, in an
# overlayfs snapshot of the pristine chroot $WORK/chroot (built by make-chroot.sh):
#   1. git clone --no-local of the repository's committed history (read-only bind mount), checkout COMMIT
#   2. make run ARGS="--port $PORT"  until "aedaemon ready port=...", then Ctrl-C (SIGINT) it
#   3. checks: what apt installed, that the venv has no torch/pytest/matplotlib, no jackd2 etc.
#   4. a second make run (must not reinstall), timed
#   5. make test (timeout $TEST_TIMEOUT s)
# Everything is logged to $WORK/logs/try-<stamp>-<sha>/ (summary.txt first).
#
#   tools/fresh-machine/try.sh [COMMIT]
#   env: PORT=9000 READY_TIMEOUT=1500 TEST_TIMEOUT=3000 SKIP_TEST=1 KEEP=1 (keep the snapshot
#        mounted for inspection; unmount later with: try.sh --umount DIR)
set -euo pipefail
SRC="${SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
WORK="${WORK:-/var/tmp/aedaemon-fresh}"
PRISTINE="${PRISTINE:-$WORK/chroot}"
TOOLS="$WORK"
PORT="${PORT:-9000}"
READY_TIMEOUT="${READY_TIMEOUT:-1500}"
TEST_TIMEOUT="${TEST_TIMEOUT:-3000}"

umount_all() {
  local r="$1"
  grep -o " $r[^ ]*" /proc/self/mountinfo | sed 's/^ //' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}
kill_chroot_procs() {  # every process whose root is the snapshot (all started by this script)
  local r="$1" sig="${2:-TERM}" p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] && kill -"$sig" "${p#/proc/}" 2>/dev/null || true
  done
}
if [ "${1:-}" = "--umount" ]; then
  kill_chroot_procs "$2/root" KILL; sleep 1; umount_all "$2/root"; exit 0
fi

EXEC_SNAP=""; EXEC_CMD=""
if [ "${1:-}" = "--exec" ]; then  # re-enter a finished try's snapshot: try.sh --exec SNAPDIR 'cmd'
  EXEC_SNAP="$2"; EXEC_CMD="$3"
fi
[ -f "$PRISTINE/.pristine-ok" ] || { echo "no pristine chroot: run $(dirname "$0")/make-chroot.sh" >&2; exit 1; }
if [ -n "$EXEC_SNAP" ]; then
  SNAP="$EXEC_SNAP"; R="$SNAP/root"; LOGD=/dev/null
else
SHA="$(git -C "$SRC" rev-parse --verify "${1:-HEAD}^{commit}")"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGD="$TOOLS/logs/try-$STAMP-${SHA:0:7}"
SNAP="$TOOLS/snapshots/try-$STAMP-${SHA:0:7}"
R="$SNAP/root"
mkdir -p "$LOGD" "$SNAP"/{upper,work,root}
SUM="$LOGD/summary.txt"
note() { echo "$*" | tee -a "$SUM"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

note "try of $SHA ($(git -C "$SRC" log -1 --format=%s "$SHA" | cut -c1-100))"
note "started $(date -u +%FT%TZ); snapshot $SNAP; logs $LOGD"
fi

# ---- the snapshot and its mounts ------------------------------------------------------------
mount -t overlay overlay -o "lowerdir=$PRISTINE,upperdir=$SNAP/upper,workdir=$SNAP/work" "$R"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: left mounted; $0 --umount $SNAP"; return; fi
  kill_chroot_procs "$R" TERM; sleep 2; kill_chroot_procs "$R" KILL; sleep 1
  umount_all "$R"
}
trap cleanup EXIT
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"; mount --make-rslave "$R/sys"
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"   # its own: not the host's jackd
for d in /opt/wheels /opt/pypi*; do
  [ -d "$d" ] || continue
  mkdir -p "$R$d"; mount --bind "$d" "$R$d"; mount -o remount,bind,ro "$R$d"
done
mkdir -p "$R/mnt/aedaemon-src"
mount --bind "$SRC" "$R/mnt/aedaemon-src"; mount -o remount,bind,ro "$R/mnt/aedaemon-src"

# The environment of a fresh root login, plus this network's pip/TLS settings (CI has them too).
ENVV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root
      LOGNAME=root SHELL=/bin/bash TERM=dumb)
while IFS= read -r kv; do ENVV+=("$kv"); done < <(env | grep -E '^(PIP_[A-Z_]*|SSL_CERT_[A-Z]*|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)=' || true)
inroot() { chroot "$R" /usr/bin/env -i "${ENVV[@]}" /bin/bash -lc "$1"; }
tagged() {  # run $1 in the chroot; stdout/stderr lines timestamped and tagged into $2
  local cmd="$1" log="$2"
  inroot "$cmd" > >(trap '' INT; while IFS= read -r l; do printf '%s out| %s\n' "$(date +%T.%3N)" "$l"; done >>"$log") \
                2> >(trap '' INT; while IFS= read -r l; do printf '%s ERR| %s\n' "$(date +%T.%3N)" "$l"; done >>"$log")
}

if [ -n "$EXEC_SNAP" ]; then umount "$R/mnt/aedaemon-src"; inroot "$EXEC_CMD"; exit $?; fi
inroot 'dpkg-query -W -f="\${Package}\n" | sort' >"$LOGD/dpkg-before.txt"

# ---- 1. the clone --------------------------------------------------------------------------
inroot "git clone -q --no-local /mnt/aedaemon-src /root/aedaemon && cd /root/aedaemon && git checkout -q --detach $SHA && git log -1 --format='clone HEAD %H' && git status --short | wc -l | sed 's/^/dirty files in clone: /'" | tee -a "$SUM"
umount "$R/mnt/aedaemon-src"   # the host work tree is gone from the fresh machine

port_busy() { ss -Hlun "sport = :$PORT" | grep -q . || ss -Hltn "sport = :$PORT" | grep -q .; }
if port_busy; then
  note "WARNING: port $PORT is in use on the host (shared network namespace): using a free one"
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi

# ---- make run (start, wait for ready, Ctrl-C) ---------------------------------------------------
run_once() {  # $1 = label; sets RUN_READY_S, RUN_RC
  local label="$1" log="$LOGD/$1.log" t0 pid
  : >"$log"
  t0="$(now)"
  setsid bash -c "$(declare -f inroot tagged); $(declare -p R ENVV); tagged 'cd /root/aedaemon && make run ARGS=\"--port $PORT\"' '$log'" &
  pid=$!
  RUN_READY_S=""
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q 'aedaemon ready port=' "$log"; then RUN_READY_S="$(since "$t0")"; break; fi
    if [ "$(since "$t0" | cut -d. -f1)" -ge "$READY_TIMEOUT" ]; then break; fi
    sleep 0.5
  done
  if [ -n "$RUN_READY_S" ]; then
    note "$label: READY after ${RUN_READY_S}s: $(grep -m1 'aedaemon ready' "$log" | cut -c14-)"
    sleep 3
    inroot "ps -eo pid,pgid,rss,args | grep -E '[a]edaemon run'" >>"$LOGD/$label.ps" 2>&1 || true
  else
    note "$label: NOT ready (exited or timed out after $(since "$t0")s)"
  fi
  # stop like Ctrl-C: SIGINT to the whole foreground group
  local ts; ts="$(now)"
  kill -INT -- "-$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    note "$label: still running 15 s after SIGINT: SIGTERM"; kill -TERM -- "-$pid" 2>/dev/null || true; sleep 5
    kill -0 "$pid" 2>/dev/null && { note "$label: SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  fi
  RUN_RC=0; wait "$pid" || RUN_RC=$?
  sleep 0.5
  note "$label: stopped ${RUN_RC:+rc=$RUN_RC} $(since "$ts")s after SIGINT; total $(since "$t0")s; $(wc -l <"$log") output lines ($(grep -c ' ERR| ' "$log" || true) on stderr)"
}

note "---- first make run (fresh clone) on port $PORT"
run_once run1
inroot 'dpkg-query -W -f="\${Package}\n" | sort' >"$LOGD/dpkg-after-run.txt"
note "apt packages added by make run: $(comm -13 "$LOGD/dpkg-before.txt" "$LOGD/dpkg-after-run.txt" | wc -l)"
for p in python3-dev python3-venv gcc libc6-dev portaudio19-dev libjack-jackd2-dev liblo-tools jackd2 puredata-core fluidsynth fluid-soundfont-gm libsndfile1; do
  if grep -qx "$p" "$LOGD/dpkg-after-run.txt"; then st=installed; else st=absent; fi
  note "  dpkg after make run: $p $st"
done
inroot 'cd /root/aedaemon && .venv/bin/pip list --format=freeze 2>/dev/null' >"$LOGD/pip-after-run.txt" || true
for m in torch pytest matplotlib hypothesis onnx soundfile pyaudio onnxruntime; do
  v="$(grep -i "^$m==" "$LOGD/pip-after-run.txt" || true)"
  note "  venv after make run: $m ${v:-absent}"
done
inroot 'cd /root/aedaemon && du -sh .venv; cat .venv/.aedaemon-installed; .venv/bin/python -c "import pyaudio; print(\"pyaudio\", pyaudio.__version__, pyaudio.get_portaudio_version_text())"' 2>&1 | sed 's/^/  /' | tee -a "$SUM"

note "---- second make run (must not reinstall)"
run_once run2
grep -q 'setup:' "$LOGD/run2.log" && note "run2: WARNING: setup printed: $(grep 'setup:' "$LOGD/run2.log" | cut -c14- | paste -sd';')"

# ---- make test ------------------------------------------------------------------------------
if [ "${SKIP_TEST:-0}" != 1 ]; then
  note "---- make test (timeout ${TEST_TIMEOUT}s)"
  t0="$(now)"; rc=0
  timeout -s INT -k 30 "$TEST_TIMEOUT" bash -c "$(declare -f inroot tagged); $(declare -p R ENVV); tagged 'cd /root/aedaemon && make test' '$LOGD/test.log'" || rc=$?
  note "make test: rc=$rc after $(since "$t0")s"
  note "  summary: $(grep -E ' out\| .*(passed|failed|error)' "$LOGD/test.log" | tail -1 | cut -c14-)"
  grep -E '^.{12} out\| (FAILED|ERROR) ' "$LOGD/test.log" | cut -c14- | head -40 | sed 's/^/  /' | tee -a "$SUM"
  inroot 'dpkg-query -W -f="\${Package}\n" | sort' >"$LOGD/dpkg-after-test.txt"
  inroot 'cd /root/aedaemon && .venv/bin/pip list --format=freeze 2>/dev/null' >"$LOGD/pip-after-test.txt" || true
  note "apt packages added by make test: $(comm -13 "$LOGD/dpkg-after-run.txt" "$LOGD/dpkg-after-test.txt" | wc -l)"
  cp "$R/tmp/aedaemon-jackd.log" "$LOGD/" 2>/dev/null || true
fi
note "finished $(date -u +%FT%TZ)"
