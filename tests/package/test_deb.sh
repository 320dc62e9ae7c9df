#!/usr/bin/env bash
# The Debian package, end to end, on this machine (needs root; scripts/test.sh runs it in CI):
# build it with cpack from an existing build directory, `dpkg -i` it, check what it put
# where (binaries, the corral user, /var/lib/corral, the conffile, the unit: enabled, not
# started, `systemd-analyze verify`, `security` exposure <= 2.0; the example configs and
# socket unit), serve simulated backends with the INSTALLED binary running as the corral
# user with /proc/stat hidden as the unit's ProcSubset=pid hides it (process_start_time_seconds
# must still be right), `dpkg -i` the same package twice more (the reinstall/upgrade path of
# the maintainer scripts: an edited conffile, the state directory and an admin's disable are
# kept), then `dpkg -r` (binary gone, conffile kept) and `dpkg -P` (conffile, state and
# /var/log/corral gone). cpack reuses BUILD_DIR as it is (scripts/test.sh has built all of
# it): about 40 s on 2 busy cores (most of it cpack and dpkg's man-db trigger).
#
# Usage: tests/package/test_deb.sh [BUILD_DIR]   (default: $BUILD_DIR or build)
# Exit: 0 passed, 1 failed, 77 skipped (not root).
#
# It never touches a corral it did not install: it refuses to run when a corral package or
# a /usr/bin/corral is already there. The EXIT trap stops every process it started, purges
# the package if it is still installed, and removes the corral user and group if this run
# created them, so the machine is left as it was found, on success or failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${BUILD_DIR:-$root/build}}" && pwd)
unit=/usr/lib/systemd/system/corral.service
examples=/usr/share/doc/corral/examples
conf=/etc/corral/corral.yaml

if [ "$(id -u)" != 0 ]; then
  echo "test_deb: SKIP (needs root: dpkg -i, a system user)"
  exit 77
fi
if dpkg-query -W -f='${Status}' corral 2>/dev/null | grep -qv "not-installed"; then
  echo "test_deb: a corral package is on this machine already (dpkg -l corral); not replacing it" >&2
  exit 1
fi
if [ -e /usr/bin/corral ] || [ -e /usr/bin/corral-bench ]; then
  echo "test_deb: /usr/bin/corral exists and belongs to no package; not overwriting it" >&2
  exit 1
fi
# The purge this test runs removes these: they must not be someone else's.
for d in /var/lib/corral /var/log/corral; do
  if [ -e $d ]; then
    echo "test_deb: $d exists and belongs to no package; not letting a purge remove it" >&2
    exit 1
  fi
done

user_existed=0
getent passwd corral >/dev/null && user_existed=1
group_existed=0
getent group corral >/dev/null && group_existed=1
work=$(mktemp -d /tmp/corral-deb.XXXXXX)
pids=()

fail() {
  echo "test_deb: FAIL: $*" >&2
  for f in "$work"/*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if dpkg-query -W -f='${Status}' corral 2>/dev/null | grep -qv "not-installed"; then
    echo "test_deb: purging the package" >&2
    dpkg -P corral >/dev/null 2>&1
  fi
  # The package keeps its system user on purge (Debian practice); a test run does not.
  if [ $user_existed = 0 ] && getent passwd corral >/dev/null; then userdel corral; fi
  if [ $group_existed = 0 ] && getent group corral >/dev/null; then groupdel corral; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step() { echo "test_deb: [${SECONDS}s] $*"; }

# --- build ------------------------------------------------------------------------------
step "cpack -G DEB in $build"
start=$SECONDS
# The packaged targets are brought up to date first; cpack's own pre-install build of
# `all` then finds nothing to do in a built tree (a few seconds of make's checks).
(cd "$build" && cmake --build . --target corral corral-bench corral_default_config >/dev/null &&
  cpack -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1) || fail "cpack failed"
step "cpack: $((SECONDS - start)) s"
deb=$(find "$work/deb" -maxdepth 1 -name "corral_*.deb" | head -n 1)
[ -n "$deb" ] || fail "no corral_*.deb in $work/deb"

# Depends: what the binary links, as Debian packages.
depends=$(dpkg-deb -f "$deb" Depends)
step "Depends: $depends"
need=(adduser libuv1 libssl3 libyaml-cpp0.7 libxxhash0)
ldd "$build/corral" | grep -q libsystemd && need+=(libsystemd0)
for p in "${need[@]}"; do
  [[ ", $depends," == *", $p "* || ", $depends," == *", $p,"* ]] || fail "Depends lacks $p"
done
dpkg-deb -c "$deb" | grep -q ' ./usr/local/' && fail "the package installs under /usr/local"

# --- install ----------------------------------------------------------------------------
step "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$work/dpkg-install.log" 2>&1 || fail "dpkg -i failed"
for f in /usr/bin/corral /usr/bin/corral-bench /usr/share/man/man8/corral.8 \
  /usr/share/man/man1/corral-bench.1 /usr/share/man/man5/corral.yaml.5 "$unit" \
  /usr/share/doc/corral/README.md "$conf" "$examples/corral.socket"; do
  [ -e "$f" ] || fail "$f not installed"
done

/usr/bin/corral -t "$conf" >"$work/check.log" 2>&1 || fail "corral -t $conf"
step "corral -t $conf: ok"
# The unit's own ExecStartPre, as the user it runs as: corral must be able to read the
# conffile (group corral), or every start would fail.
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
[ "$pre" = "/usr/bin/corral -t -c $conf" ] || fail "ExecStartPre in $unit: $pre"
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
setpriv --reuid=corral --regid=corral --init-groups $pre >"$work/prestart.log" 2>&1 ||
  fail "ExecStartPre ($pre) as user corral"
step "ExecStartPre as user corral: ok ($pre)"
# The installed example configs are valid where they were installed.
n=0
for f in "$examples"/*.yaml; do
  /usr/bin/corral -t "$f" >>"$work/check.log" 2>&1 || fail "corral -t $f"
  n=$((n + 1))
done
[ $n -ge 4 ] || fail "only $n example configs in $examples"
step "corral -t: $n installed examples ok"

# The corral system user and its state directory.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd corral) || fail "no corral user"
[ "$uid" -lt 1000 ] || fail "corral is not a system user (uid $uid)"
[ "$home" = /var/lib/corral ] || fail "corral's home is $home"
[[ "$shell" == */nologin || "$shell" == /bin/false ]] || fail "corral has a login shell: $shell"
[ "$(getent group corral | cut -d: -f3)" = "$gid" ] || fail "corral's primary group is not corral"
[ "$(stat -c %U:%G /var/lib/corral)" = corral:corral ] || fail "/var/lib/corral is $(stat -c %U:%G /var/lib/corral)"
step "user corral ($uid:$gid), /var/lib/corral corral:corral"

# The conffile: dpkg knows it; root's to write, corral's to read; the embedded default.
dpkg-query -W -f='${Conffiles}\n' corral | grep -q "^ $conf " || fail "$conf is not a conffile"
[ "$(stat -c %U:%G:%a "$conf")" = root:corral:640 ] || fail "$conf is $(stat -c %U:%G:%a "$conf")"
/usr/bin/corral --print-default-config >"$work/default.yaml" || fail "corral --print-default-config"
grep -v '^#' "$conf" | cmp -s - "$work/default.yaml" || fail "$conf is not the embedded default"
step "conffile $conf (root:corral 0640)"

# The unit: paths from the /usr prefix, enabled, not started, verified, hardened.
grep -q '^ExecStart=/usr/bin/corral -c /etc/corral/corral.yaml$' "$unit" || fail "ExecStart in $unit"
[ -L /etc/systemd/system/multi-user.target.wants/corral.service ] || fail "corral.service is not enabled"
pgrep -u corral >/dev/null && fail "something runs as corral after the install (the unit was started)"
systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || fail "systemd-analyze verify $unit"
[ -s "$work/verify.log" ] && fail "systemd-analyze verify printed: $(cat "$work/verify.log")"
# The example socket unit, as an operator would install it next to the unit: not enabled.
[ -e /etc/systemd/system/sockets.target.wants/corral.socket ] && fail "corral.socket is enabled"
mkdir "$work/units" && cp "$unit" "$examples/corral.socket" "$work/units/"
systemd-analyze verify "$work/units/corral.socket" >"$work/verify-socket.log" 2>&1 ||
  fail "systemd-analyze verify corral.socket: $(cat "$work/verify-socket.log")"
[ -s "$work/verify-socket.log" ] && fail "systemd-analyze verify corral.socket printed: $(cat "$work/verify-socket.log")"
systemd-analyze security --offline=true "$unit" >"$work/security.log" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for corral.service: \([0-9.]*\).*/\1/p' "$work/security.log")
[ -n "$score" ] || fail "no exposure score from systemd-analyze security"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure score $score > 2.0"
step "unit enabled, not started; verify clean; exposure $score"

# --- serve, as the corral user ----------------------------------------------------------
/usr/bin/corral-bench backend --count 2 --listen 127.0.0.1:0 --name kupo >"$work/backend.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do [ "$(grep -c '^listening' "$work/backend.log")" -ge 2 ] && break; sleep 0.1; done
mapfile -t backends < <(sed -n 's/^listening \(\S*\) \(127\.0\.0\.1:[0-9]*\).*/\1 \2/p' "$work/backend.log")
[ ${#backends[@]} -eq 2 ] || fail "the simulated backends did not start"

run=$work/run
mkdir -m 0750 "$run" && chgrp corral "$run" && chmod 0711 "$work"
cat >"$run/corral.yaml" <<EOF
stop_timeout: 2s
state_file: /var/lib/corral/pins
admin: {listen: 127.0.0.1:0}
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: kupo, methods: [GET, HEAD, OPTIONS]}
sticky:
  keys:
    - {from: path, prefix: /s/}
pools:
  kupo:
    kind: kupo
    health: {interval: 500ms, timeout: 400ms, rise: 1}
    backends:
      - {name: ${backends[0]%% *}, address: ${backends[0]#* }}
      - {name: ${backends[1]%% *}, address: ${backends[1]#* }}
EOF
chgrp corral "$run/corral.yaml" && chmod 0640 "$run/corral.yaml"
# The unit is Type=notify: systemd counts it started only when READY=1 comes. A socket of
# this test's own stands in for systemd's NOTIFY_SOCKET (no systemd runs as PID 1 here), so
# the packaged binary, linked to Debian's libsystemd0, must announce itself to it.
notify=$run/notify.sock
python3 -c '
import grp, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chown(sys.argv[1], -1, grp.getgrnam("corral").gr_gid)
os.chmod(sys.argv[1], 0o660)
out = open(sys.argv[2], "a")
out.write("bound\n"); out.flush()
while True:
    out.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n"); out.flush()
' "$notify" "$work/notify.log" 2>"$work/notify-err.log" &
pids+=("$!")
for _ in $(seq 50); do grep -q '^bound' "$work/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^bound' "$work/notify.log" 2>/dev/null || fail "the notify socket did not come up"
# Under the unit, ProcSubset=pid hides /proc/stat (and all of /proc but the pid
# directories); a private mount namespace with /dev/null over /proc/stat does the same here.
# unshare and sh exec, so $! is corral's own pid.
started=$(date +%s)
NOTIFY_SOCKET=$notify unshare --mount sh -c 'mount --bind /dev/null /proc/stat && exec "$@"' sh \
  setpriv --reuid=corral --regid=corral --init-groups \
  /usr/bin/corral -c "$run/corral.yaml" >"$work/corral.log" 2>&1 &
corral_pid=$!
pids+=("$corral_pid")
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening public 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/corral.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 $corral_pid 2>/dev/null || fail "the installed corral exited"
  sleep 0.1
done
[ -n "$port" ] || fail "corral did not log its listener"
[ "$(ps -o user= -p $corral_pid)" = corral ] || fail "corral runs as $(ps -o user= -p $corral_pid)"
for _ in $(seq 100); do grep -q 'READY=1' "$work/notify.log" && break; sleep 0.1; done
grep -q 'READY=1' "$work/notify.log" || fail "no READY=1 on NOTIFY_SOCKET: $(cat "$work/notify.log")"
step "READY=1 on NOTIFY_SOCKET ($(grep -m1 'READY=1' "$work/notify.log" | cut -c1-80))"
code=
for _ in $(seq 50); do
  code=$(curl -s -m 2 -o "$work/body" -D "$work/headers" -w '%{http_code}' \
    "http://127.0.0.1:$port/s/alice/matches/*?unspent" || true)
  [ "$code" = 200 ] && break
  sleep 0.2
done
[ "$code" = 200 ] || fail "GET through the installed corral: $code, want 200"
grep -qi '^X-Backend: kupo-' "$work/headers" || fail "the 200 did not come from a simulated backend"
step "installed /usr/bin/corral as user corral on 127.0.0.1:$port: 200 from $(grep -i '^X-Backend' "$work/headers" | tr -d '\r' | cut -d' ' -f2)"

# process_start_time_seconds without /proc/stat: the time corral started, not 0.
[ "$(readlink /proc/$corral_pid/exe)" = /usr/bin/corral ] || fail "pid $corral_pid is not corral"
[ "$(wc -c </proc/stat)" -gt 0 ] || fail "this machine's /proc/stat is empty"
[ "$(nsenter -t $corral_pid -m cat /proc/stat | wc -c)" = 0 ] || fail "/proc/stat is not hidden from corral"
admin=$(sed -n 's/.*admin listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/corral.log" | head -n 1)
[ -n "$admin" ] || fail "corral did not log its admin listener"
curl -s -m 5 -o "$work/metrics" "http://127.0.0.1:$admin/metrics" || fail "GET /metrics"
st=$(sed -n 's/^process_start_time_seconds \([0-9.e+]*\)$/\1/p' "$work/metrics")
[ -n "$st" ] || fail "no process_start_time_seconds in /metrics"
awk -v s="$st" -v t="$started" 'BEGIN { exit !(s >= t - 2 && s <= t + 10) }' ||
  fail "process_start_time_seconds $st with /proc/stat hidden; corral started at $started"
step "/proc/stat hidden: process_start_time_seconds $st (started at $started)"

# A clean stop writes the state file: corral can write to its state directory.
kill -TERM $corral_pid
for _ in $(seq 100); do kill -0 $corral_pid 2>/dev/null || break; sleep 0.1; done
kill -0 $corral_pid 2>/dev/null && fail "corral still runs 10 s after SIGTERM"
rc=0
wait $corral_pid || rc=$?
[ $rc = 0 ] || fail "corral exited $rc on SIGTERM"
grep -q 'STOPPING=1' "$work/notify.log" || fail "no STOPPING=1 on NOTIFY_SOCKET"
[ "$(stat -c %U /var/lib/corral/pins 2>/dev/null)" = corral ] || fail "no state file written by corral in /var/lib/corral"
step "SIGTERM: STOPPING=1, exit 0, /var/lib/corral/pins written by corral"

# --- reinstall (the upgrade path of the maintainer scripts) -----------------------------
# An admin's edit of the conffile (a comment line) is kept by --force-confold (and by dpkg
# anyway, as the packaged file did not change); the state directory and its files stay
# corral's; the unit stays enabled. Then an admin disables it: a reinstall keeps it off.
sed -i '0,/^#/s/^#.*/# edited by an admin (test_deb)/' "$conf"
grep -q '^# edited by an admin (test_deb)$' "$conf" || fail "could not edit a comment in $conf"
sum=$(sha256sum <"$conf")
reinstall() {
  # --no-triggers: man-db's index update (most of a dpkg run's time) waits for dpkg -r.
  dpkg -i --force-confold --no-triggers "$deb" >"$work/dpkg-reinstall.log" 2>&1 ||
    fail "dpkg -i again ($1)"
  [ "$(dpkg-query -W -f='${Status}' corral)" = "install ok installed" ] ||
    fail "after dpkg -i again ($1): $(dpkg-query -W -f='${Status}' corral)"
  [ "$(sha256sum <"$conf")" = "$sum" ] || fail "dpkg -i again ($1) changed the edited $conf"
  [ "$(stat -c %U:%G:%a "$conf")" = root:corral:640 ] || fail "$conf is $(stat -c %U:%G:%a "$conf") after dpkg -i again ($1)"
  [ "$(stat -c %U:%G:%a /var/lib/corral)" = corral:corral:750 ] ||
    fail "/var/lib/corral is $(stat -c %U:%G:%a /var/lib/corral) after dpkg -i again ($1)"
  [ "$(stat -c %U /var/lib/corral/pins 2>/dev/null)" = corral ] || fail "dpkg -i again ($1) lost /var/lib/corral/pins"
  [ "$(getent passwd corral | cut -d: -f3)" = "$uid" ] || fail "dpkg -i again ($1) changed the corral user"
}
reinstall enabled
[ -L /etc/systemd/system/multi-user.target.wants/corral.service ] || fail "reinstall disabled corral.service"
DPKG_MAINTSCRIPT_PACKAGE=corral deb-systemd-helper --quiet was-enabled corral.service || fail "deb-systemd-helper: not was-enabled after reinstall"
step "dpkg -i again: edited conffile kept, /var/lib/corral corral:corral, still enabled"
# deb-systemd-helper answers only a maintainer script (DPKG_MAINTSCRIPT_PACKAGE); was-enabled
# is what postinst asks before it enables. systemctl disable works on the files when systemd
# is not PID 1 (a container, CI).
systemctl disable corral.service >"$work/disable.log" 2>&1 || fail "systemctl disable corral: $(cat "$work/disable.log")"
[ ! -e /etc/systemd/system/multi-user.target.wants/corral.service ] || fail "systemctl disable left the link"
reinstall disabled
[ ! -e /etc/systemd/system/multi-user.target.wants/corral.service ] || fail "reinstall re-enabled a disabled corral.service"
DPKG_MAINTSCRIPT_PACKAGE=corral deb-systemd-helper --quiet was-enabled corral.service && fail "deb-systemd-helper: was-enabled after an admin's disable"
step "systemctl disable, dpkg -i again: stays disabled"

# --- remove, purge ----------------------------------------------------------------------
dpkg -r corral >"$work/dpkg-remove.log" 2>&1 || fail "dpkg -r corral"
[ ! -e /usr/bin/corral ] || fail "/usr/bin/corral is still there after dpkg -r"
[ ! -e "$unit" ] || fail "$unit is still there after dpkg -r"
[ -e "$conf" ] || fail "dpkg -r removed the conffile"
step "dpkg -r: binary and unit gone, $conf kept"
# What LogsDirectory=corral makes on the unit's first start (no systemd runs it here).
install -d -o corral -g corral -m 0750 /var/log/corral && touch /var/log/corral/access.log
dpkg -P corral >"$work/dpkg-purge.log" 2>&1 || fail "dpkg -P corral"
[ ! -e "$conf" ] || fail "$conf is still there after dpkg -P"
[ ! -e /var/lib/corral ] || fail "/var/lib/corral is still there after dpkg -P"
[ ! -e /var/log/corral ] || fail "/var/log/corral is still there after dpkg -P"
[ ! -e /etc/systemd/system/multi-user.target.wants/corral.service ] || fail "enable link left after purge"
[ ! -e /etc/systemd/system/corral.service ] || fail "mask left after purge"
dpkg-query -W -f='${Status}' corral 2>/dev/null | grep -qv "not-installed" && fail "dpkg still lists corral"
step "dpkg -P: conffile, state, /var/log/corral and enable links gone"
echo "test_deb: PASS"
