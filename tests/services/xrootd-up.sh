#!/usr/bin/env bash
# Start a standalone, unauthenticated XRootD server for tests.
#   data dir  : $BASE/data   (served as root://localhost:$PORT//data/...)
#   usage: tests/services/xrootd-up.sh [BASE] (default ${TMPDIR:-/tmp}/larvae-svc/xrd);  XRD_PORT (default: a free port)
# Prints the port, the URL prefix and how to stop it.  Needs root only because
# xrootd refuses to run as root and we drop to the 'xrootd' user with -R.
set -euo pipefail
BASE=${1:-${TMPDIR:-/tmp}/larvae-svc/xrd}
ts() { date +%s.%N; }
T0=$(ts)
if ! command -v xrootd >/dev/null || ! command -v xrdcp >/dev/null; then
  echo "[xrootd-up] installing xrootd-server xrootd-client ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xrootd-server xrootd-client >/dev/null
fi
T1=$(ts)
PORT=${XRD_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
if ss -ltn "sport = :$PORT" | grep -q LISTEN; then echo "[xrootd-up] port $PORT busy" >&2; exit 1; fi

RUNAS=xrootd                                   # created by the Debian package
getent passwd "$RUNAS" >/dev/null || RUNAS=nobody
mkdir -p "$BASE"/{data,admin,run,log}
chown -R "$RUNAS": "$BASE"/{data,admin,run,log}  # server must write admin/run/log (and data for uploads)

cat > "$BASE/xrootd.cfg" <<EOF
# minimal standalone data server; no security plugin => anonymous read/write
xrd.port $PORT
oss.localroot $BASE
all.export /data
all.adminpath $BASE/admin
all.pidpath $BASE/run
# xrootd cannot bind to 127.0.0.1 only; refuse every peer whose name is not localhost
xrd.allow host localhost
EOF

# -b: daemonise, -I v4: IPv4 only (listen 0.0.0.0; [::1] would be refused by
# xrd.allow anyway), -R: drop privileges, -n: instance name (log/admin subdirs).
xrootd -b -I v4 -R "$RUNAS" -n svc -c "$BASE/xrootd.cfg" -l "$BASE/log/xrootd.log" -s "$BASE/run/xrootd.pid"
ok=
for _ in $(seq 1 100); do
  if ss -ltn "sport = :$PORT" | grep -q LISTEN && [ -s "$BASE/run/xrootd.pid" ]; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { echo "[xrootd-up] server did not start; see $BASE/log/svc/xrootd.log" >&2; exit 1; }
export XRD_CONNECTIONRETRY=1 XRD_CONNECTIONWINDOW=5    # fail fast instead of ~10 min retrying
xrdfs "localhost:$PORT" ls /data >/dev/null               # smoke test
T2=$(ts)
PID=$(cat "$BASE/run/xrootd.pid")
echo "$PORT" > "$BASE/port"
cat > "$BASE/stop.sh" <<EOF
#!/usr/bin/env bash
kill $PID 2>/dev/null && while kill -0 $PID 2>/dev/null; do sleep 0.2; done   # exits in ~1 s
# optional: rm -rf $BASE
EOF
chmod +x "$BASE/stop.sh"
python3 - "$T0" "$T1" "$T2" <<'EOF'
import sys; t0, t1, t2 = map(float, sys.argv[1:])
print(f"[xrootd-up] install {t1-t0:.1f}s, start {t2-t1:.1f}s")
EOF
echo "[xrootd-up] pid $PID, port $PORT, files in $BASE/data"
echo "[xrootd-up] url:  root://localhost:$PORT//data/<file>"
echo "[xrootd-up] tip:  export XRD_CONNECTIONRETRY=1 XRD_CONNECTIONWINDOW=5"
echo "[xrootd-up] stop: $BASE/stop.sh   (or: kill $PID)"
