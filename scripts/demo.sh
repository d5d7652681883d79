#!/usr/bin/env bash
# README command 1: installs what is missing, starts private MariaDB, nginx, PowerDNS and php-fpm under
# .run/ (nothing of the machine's own services is touched), makes a sandbox server root with demo
# accounts created by the real create path, and serves the panel at https://127.0.0.1:8443.
# It runs the split as production does (deploy/): the agent as root, the panel as the unprivileged host user
# opterius-demo (made once, a system user without login or home), each reading a file shaped like deploy's
# /etc/opterius/agent.json and panel.json (here .run/etc/), over the agent's socket .run/agent/agent.sock.
# Ctrl-C (or TERM) stops the panel, the agent and every service this script started, by their pids.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
run=$repo/.run
# The panel runs as an unprivileged user and must reach its files: a clone it cannot traverse (under /root, 0700)
# keeps the demo's state in a temp folder instead.
setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$repo" 2>/dev/null || run=/tmp/opterius-demo
mkdir -p "$run"
[ "$run" = "$repo/.run" ] || { chmod 755 "$run"; echo "the demo's state is in $run ($repo is not reachable by other users)"; }
scripts/install.sh

scripts/sandbox.sh "$run/root" >/dev/null
panel_pid="" agent_pid=""
# By pid, panel first (it may be mid-call to the agent), then the agent, then the daemons (services.sh, by the pids it recorded).
stop_all() {
  trap - EXIT INT TERM
  echo; echo "stopping the panel, the agent and the private services"
  local pid; for pid in $panel_pid $agent_pid; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
  done
  scripts/services.sh stop "$run/services"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/services.sh start "$run/services" "$run/root"
# shellcheck disable=SC1091
source "$run/services/services.env"

# The panel's user: a host user (the private php-fpm and nginx resolve names from the host's passwd too), with no
# login, no home and nothing else; the agent serves it and root only (Opterius:Agent:PanelUser).
user=opterius-demo
getent passwd $user >/dev/null || useradd --system --user-group --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin --comment "Opterius Panel demo (scripts/demo.sh)" $user
# setpriv and env exec what follows: a background one's $! is the panel's own pid.
as_panel=(setpriv --reuid=$user --regid=$user --clear-groups env HOME="$run/panel")

# MariaDB users as deploy/install.sh makes them, one per process: the panel's has rights on the panel database only,
# the agent's on everything (this private instance is the demo's own; deploy's agent user has narrower grants).
# The private instance's root gets in only as the machine's root (unix_socket; services.sh uses it so), so that
# the panel's user, which reaches the socket, cannot use it.
sql() { mariadb --no-defaults -S "$MARIADB_SOCKET" -uroot "$@"; }
sql -N -e "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'" |
  while read -r account; do sql -e "DROP USER $account"; done
sql -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket"
db_user() { # name password grant [WITH GRANT OPTION]
  echo "CREATE USER IF NOT EXISTS '$1'@'localhost' IDENTIFIED BY '$2'; ALTER USER '$1'@'localhost' IDENTIFIED BY '$2';
        REVOKE ALL PRIVILEGES, GRANT OPTION FROM '$1'@'localhost'; GRANT $3 TO '$1'@'localhost' ${4:-};"
}
new_password() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
panel_pw=$(new_password) agent_pw=$(new_password)
{
  echo "CREATE DATABASE IF NOT EXISTS opterius CHARACTER SET utf8mb4;"
  db_user opterius-demo-panel "$panel_pw" "ALL PRIVILEGES ON opterius.*"
  db_user opterius-demo-agent "$agent_pw" "ALL PRIVILEGES ON *.*" "WITH GRANT OPTION"
} | sql
agent_cs="Server=$MARIADB_SOCKET;Protocol=Unix;User ID=opterius-demo-agent;Password=$agent_pw"
pdns_cs="$agent_cs;Database=${PDNS_DATABASE:-powerdns}"

# Folders as deploy/install.sh makes them: the configuration root's with the panel's group, the panel's state
# its own, the agent's socket folder root's (the agent gives the socket mode 0660 and the panel's group).
gid=$(id -g $user)
install -d -m 0750 -o 0 -g "$gid" "$run/etc"
install -d -m 0750 -o $user -g "$gid" "$run/panel"
install -d -m 0755 -o 0 -g 0 "$run/agent"
[ -s "$run/etc/jwt.key" ] || (umask 077; head -c 48 /dev/urandom | base64 >"$run/etc/jwt.key")

# agent.json is services.sh's Opterius section (root, sandbox commands, provisioning) with the agent's keys;
# panel.json holds the panel database, the JWT key, the license, HTTPS, the socket and the same Provisioning.
RUN=$run COMMANDS=$COMMANDS_JSON SOCK=$MARIADB_SOCKET AGENT_CS=$agent_cs PDNS_CS=$pdns_cs PANEL_PW=$panel_pw \
USER_=$user UID_=$(id -u $user) GID_=$gid python3 - <<'PY'
import json, os
e = os.environ
run = e["RUN"]
with open(e["COMMANDS"]) as f: sandbox = json.load(f)["Opterius"]
with open(f"{run}/etc/jwt.key") as f: jwt = f.read().strip()
agent_socket = f"{run}/agent/agent.sock"

def write(path, value, uid, gid):
    tmp = path + ".tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(value, f, indent=2); f.write("\n")
    os.chown(tmp, uid, gid); os.chmod(tmp, 0o600); os.replace(tmp, path)

agent = {
    "ConnectionStrings": {"MariaDbAdmin": e["AGENT_CS"], "PowerDns": e["PDNS_CS"]},
    "Opterius": {**sandbox, "Agent": {"Socket": agent_socket, "PanelUser": e["USER_"]}, "Https": {"Port": 0}},
}
panel = {
    "ConnectionStrings": {"Panel": f"Server={e['SOCK']};Protocol=Unix;User ID=opterius-demo-panel;Password={e['PANEL_PW']};Database=opterius"},
    "Opterius": {
        "Agent": {"Socket": agent_socket},
        "Jwt": {"SigningKey": jwt},
        "License": {"Path": f"{run}/etc/license.json", "PublicKey": f"{run}/etc/license-signing.pem.pub"},
        "Https": {"Port": 8443, "ListenAddress": "127.0.0.1", "SelfSignedPath": f"{run}/panel/selfsigned.pfx"},
        "Provisioning": sandbox["Provisioning"],
        # The policy (on_request) and retention are the defaults; the folder is the agent's, named in the delete plan.
        # The erasure records' key lives in the panel's own state folder (it signs them; the agent never sees it).
        "Deletion": {**sandbox["Deletion"], "FinalBackup": "on_request", "FinalBackupDays": 30,
                     "RecordSigningKey": f"{run}/panel/record-signing.pem"},
    },
}
write(f"{run}/etc/agent.json", agent, 0, 0)
write(f"{run}/etc/panel.json", panel, int(e["UID_"]), int(e["GID_"]))
PY

echo "building the panel"
dotnet publish Opterius.Web -c Release -o "$run/app" --nologo -v quiet >"$run/publish.log" 2>&1 || { cat "$run/publish.log"; exit 1; }
chmod -R go+rX "$run/app"
export ASPNETCORE_ENVIRONMENT=Production DOTNET_NOLOGO=1
app=$run/app/Opterius.Web.dll

# Root's setup steps, as deploy/install.sh runs them: migrate with the panel's file and the PowerDNS connection, the license.
OPTERIUS_CONFIG=$run/etc/panel.json ConnectionStrings__PowerDns=$pdns_cs dotnet "$app" migrate
[ -s "$run/etc/license.json" ] || OPTERIUS_CONFIG=$run/etc/panel.json dotnet "$app" license issue \
  --signing-key "$run/etc/license-signing.pem" --out "$run/etc/license.json" --plan demo --max-accounts 1000 --expires-days 365
chown 0:"$gid" "$run/etc/license.json"; chmod 0640 "$run/etc/license.json"; chmod 0644 "$run/etc/license-signing.pem.pub"

OPTERIUS_CONFIG=$run/etc/agent.json dotnet "$app" agent >"$run/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 1200); do
  grep -q "Agent listening on" "$run/agent.log" && break
  kill -0 $agent_pid 2>/dev/null || { cat "$run/agent.log"; echo "the agent did not start" >&2; exit 1; }
  sleep 0.1
done
grep -q "Agent listening on" "$run/agent.log" || { cat "$run/agent.log"; echo "the agent did not start within 120 s" >&2; exit 1; }

# The panel's verbs as the panel user: the demo accounts are made through the agent. `demo seed` refuses a
# production root: the panel itself never uses Opterius:Root (the agent's is in agent.json), so it is given here.
export OPTERIUS_CONFIG=$run/etc/panel.json
"${as_panel[@]}" Opterius__Root="$run/root" dotnet "$app" demo seed
token=$("${as_panel[@]}" dotnet "$app" tokens create --name "demo-$(date +%Y%m%d-%H%M%S)" --role admin --owner admin | tail -n 1)

"${as_panel[@]}" dotnet "$app" &
panel_pid=$!

cat <<INFO

  Opterius Panel demo
  -------------------
  Panel:     https://127.0.0.1:8443   (self-signed certificate)
  Sign in:   admin / opterius-demo    (reseller / opterius-demo sees only its own accounts)
  API token: $token

  curl -sk https://127.0.0.1:8443/api/v1/accounts -H "Authorization: Bearer $token"
  A demo site:  curl -H "Host: alpha.test" http://127.0.0.1:${NGINX_PORT:-?}/
  Its zone:     dig @127.0.0.1 -p ${PDNS_PORT:-?} alpha.test A +short
  Sandbox root: $run/root

  The split:  ps -o user:16,pid,cmd -p $panel_pid,$agent_pid   (the panel as $user, the agent as root)
  Config:     $run/etc/panel.json ($user, 0600), $run/etc/agent.json (root, 0600); the agent logs to $run/agent.log

  Ctrl-C stops the panel, the agent and the private services.

INFO
# Until the panel ends or a signal arrives (its trap runs at once, as `wait` returns); then stop_all on EXIT.
wait $panel_pid || true
