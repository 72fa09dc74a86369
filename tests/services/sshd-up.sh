#!/usr/bin/env bash
# Start a private sshd on 127.0.0.1:$PORT with its own host key, config and
# authorized_keys under $BASE; key-only login for the current user (root here).
#   usage: tests/services/sshd-up.sh [BASE] (default ${TMPDIR:-/tmp}/larvae-svc/ssh);  SSH_PORT (default: a free port)
set -euo pipefail
BASE=${1:-${TMPDIR:-/tmp}/larvae-svc/ssh}
ts() { date +%s.%N; }
T0=$(ts)
if [ ! -x /usr/sbin/sshd ]; then
  echo "[sshd-up] installing openssh-server ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server >/dev/null
fi
T1=$(ts)
PORT=${SSH_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
if ss -ltn "sport = :$PORT" | grep -q LISTEN; then echo "[sshd-up] port $PORT busy" >&2; exit 1; fi

mkdir -p "$BASE"; chmod 700 "$BASE"
[ -f "$BASE/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C svc-host -f "$BASE/ssh_host_ed25519_key"
[ -f "$BASE/id_ed25519" ]           || ssh-keygen -q -t ed25519 -N '' -C svc-client -f "$BASE/id_ed25519"
cp "$BASE/id_ed25519.pub" "$BASE/authorized_keys"; chmod 600 "$BASE/authorized_keys"
# Debian's sshd insists on its privilege-separation dir (normally made by systemd)
mkdir -p /run/sshd; chmod 755 /run/sshd

cat > "$BASE/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $BASE/ssh_host_ed25519_key
PidFile $BASE/sshd.pid
AuthorizedKeysFile $BASE/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# authorized_keys lives below /tmp (mode 1777) -> StrictModes would reject it
StrictModes no
X11Forwarding no
PrintMotd no
# dask/asyncssh only needs exec channels; sftp for completeness
Subsystem sftp /usr/lib/openssh/sftp-server
# a test suite opens a burst of connections (2 per worker + scheduler)
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
EOF
cat > "$BASE/ssh_config" <<EOF
Host svc-localhost
  HostName 127.0.0.1
  Port $PORT
  User $(id -un)
  IdentityFile $BASE/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
EOF

/usr/sbin/sshd -t -f "$BASE/sshd_config"                    # config check
/usr/sbin/sshd -f "$BASE/sshd_config" -E "$BASE/sshd.log"   # absolute path required (re-exec); daemonises
ok=
for _ in $(seq 1 50); do
  if ssh -F "$BASE/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 svc-localhost true 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
T2=$(ts)
[ -n "$ok" ] || { echo "[sshd-up] cannot log in; see $BASE/sshd.log" >&2; exit 1; }
PID=$(cat "$BASE/sshd.pid")
echo "$PORT" > "$BASE/port"
cat > "$BASE/stop.sh" <<EOF
#!/usr/bin/env bash
# killing the listener leaves already-open sessions alive; they die when the clients disconnect
kill $PID 2>/dev/null
# optional: rm -rf $BASE
EOF
chmod +x "$BASE/stop.sh"
python3 - "$T0" "$T1" "$T2" <<'EOF'
import sys; t0, t1, t2 = map(float, sys.argv[1:])
print(f"[sshd-up] install {t1-t0:.1f}s, start {t2-t1:.1f}s")
EOF
echo "[sshd-up] pid $PID listening on 127.0.0.1:$PORT"
echo "[sshd-up] shell: ssh -F $BASE/ssh_config svc-localhost"
echo "[sshd-up] python: connect_options={'port': $PORT, 'known_hosts': None, 'client_keys': ['$BASE/id_ed25519']}"
echo "[sshd-up] stop: $BASE/stop.sh   (or: kill $PID)"
