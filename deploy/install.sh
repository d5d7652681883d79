#!/usr/bin/env bash
# Installs Opterius Panel on a Debian 12 server, or upgrades it: run it again and it converges on the
# same state (new binaries, same secrets, same users). As root, from a clone of the repository:
#   deploy/install.sh [options]
# It installs Debian's packages, makes the `opterius` system user, puts the published app in
# /opt/opterius (root-owned), writes /etc/opterius/panel.json and agent.json with generated secrets,
# makes least-privilege MariaDB users, points PowerDNS at its gmysql database, installs and starts the
# two systemd units (panel as `opterius`, agent as root), migrates, and creates the first admin,
# printing its password once.
#
# Options:
#   --app DIR               install this published folder (`dotnet publish Opterius.Web`) instead of publishing
#   --admin NAME            the first admin's name (admin); made only when the panel has no admin yet
#   --hostname FQDN         the server's name (hostname -f): SOA, nameservers, refused as an account domain
#   --address IP            an address the zones of new accounts point at (repeatable; default: the source
#                           address of the default route, IPv4 and IPv6)
#   --nameserver FQDN       a nameserver of new zones (repeatable; default ns1. and ns2. of the hostname)
#   --license FILE --license-public-key FILE   install a license you were given; default: issue one
#                           (self-hosted, no account limit) with a signing key kept root-only in /etc/opterius
# For a dry run on a scratch root (what CI does):
#   --root DIR              write every file under DIR instead of / (DIR/etc/passwd etc. must exist:
#                           the user is made with useradd -R DIR); configuration still names production paths
#   --no-apt                install no packages
#   --no-systemd            install the unit files but do not reload, enable or start anything
#   --no-mariadb            make no MariaDB users, run no migrate, make no admin
#   --mariadb-socket PATH   MariaDB's socket (/run/mysqld/mysqld.sock); its root must be reachable as root
#   --db-prefix P           prefix of the database and MariaDB user names (tests use their own)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

root=/ app="" admin=admin host="" addresses=() nameservers=() license="" license_pub="" given=""
apt=1 systemd=1 mariadb=1 socket=/run/mysqld/mysqld.sock prefix=""
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=${2:?}; shift ;;
    --app) app=${2:?}; shift ;;
    --admin) admin=${2:?}; shift ;;
    --hostname) host=${2:?}; given+=" Hostname SoaContact"; shift ;;
    --address) addresses+=("${2:?}"); given+=" Addresses"; shift ;;
    --nameserver) nameservers+=("${2:?}"); given+=" Nameservers"; shift ;;
    --license) license=${2:?}; shift ;;
    --license-public-key) license_pub=${2:?}; shift ;;
    --no-apt) apt=0 ;;
    --no-systemd) systemd=0 ;;
    --no-mariadb) mariadb=0 ;;
    --mariadb-socket) socket=${2:?}; shift ;;
    --db-prefix) prefix=${2:?}; shift ;;
    -h|--help) usage ;;
    *) echo "unknown option '$1'" >&2; usage ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "run as root: it makes users, owns files and writes /etc" >&2; exit 1; }
if { [ -n "$license" ] && [ -z "$license_pub" ]; } || { [ -z "$license" ] && [ -n "$license_pub" ]; }; then
  echo "--license and --license-public-key go together" >&2; exit 2
fi
# The agent's tenant grant is on the database pattern `%\_%` (every name with an underscore, as every
# tenant database `{username}_*` has): the panel and PowerDNS databases must not match it.
[[ $prefix =~ ^[a-z0-9]*$ ]] || { echo "--db-prefix takes lower-case letters and digits only" >&2; exit 2; }
root=$(mkdir -p "$root" && cd "$root" && pwd)
R() { if [ "$root" = / ]; then printf '%s' "$1"; else printf '%s%s' "$root" "$1"; fi; }
say() { printf '==> %s\n' "$*"; }

panel_db=${prefix}opterius pdns_db=${prefix}powerdns
# Hyphenated: no tenant username ([a-z][a-z0-9]{2,31}) owns them, as tenant `u` owns `u` and `u_*`.
panel_user=${prefix}opterius-panel agent_user=${prefix}opterius-agent pdns_user=${prefix}opterius-pdns
socket_uri="Server=$socket;Protocol=Unix"
agent_socket=/run/opterius/agent.sock

# 1. Packages: what the agent's resources act on and the commands it runs. Postfix for `postmap` and
#    the vmailbox map; no Dovecot or certbot (the panel writes their files: /etc/dovecot/users and
#    self-signed certificates under /etc/letsencrypt, until those integrations exist).
if [ $apt = 1 ]; then
  say "Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
  echo "postfix postfix/mailname string ${host:-$(hostname -f 2>/dev/null || hostname)}" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq mariadb-server mariadb-client nginx php8.2-fpm pdns-server pdns-backend-mysql \
    postfix cron passwd procps python3 openssl curl >/dev/null
fi
# MariaDB must answer before its users are made (apt starts it on a real server; this makes sure).
[ $systemd = 0 ] || systemctl enable --now mariadb
for c in python3 useradd; do command -v $c >/dev/null || { echo "$c is missing" >&2; exit 1; }; done
[ -x /usr/bin/dotnet ] || { echo "/usr/bin/dotnet is missing: install the .NET 10 SDK, or the ASP.NET Core 10 runtime with --app (the units run /usr/bin/dotnet)" >&2; exit 1; }

host=${host:-$(hostname -f 2>/dev/null || hostname)}
[[ $host == *.* ]] || echo "warning: the hostname '$host' is no FQDN; new zones and the SOA use it (--hostname FQDN)" >&2
if [ ${#addresses[@]} -eq 0 ]; then
  for target in 1.1.1.1 2606:4700:4700::1111; do
    a=$(ip route get "$target" 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p' | head -n 1) || true
    [ -n "$a" ] && addresses+=("$a")
  done
fi
# Both processes refuse to start without them (Opterius:Provisioning:Addresses, validated at start).
[ ${#addresses[@]} -gt 0 ] || { echo "no address found for the zones of new accounts: give --address IP" >&2; exit 2; }
[ ${#nameservers[@]} -gt 0 ] || nameservers=("ns1.$host" "ns2.$host")

# 2. The panel's user: a system user with no login and no home of its own but its state folder.
say "system user opterius"
ra=(); [ "$root" = / ] || ra=(-R "$root")
home=/var/lib/opterius/panel
if ! grep -q '^opterius:' "$(R /etc/passwd)"; then
  useradd "${ra[@]}" --system --user-group --home-dir "$home" --no-create-home \
    --shell /usr/sbin/nologin --comment "Opterius Panel" opterius
elif [ "$(awk -F: '$1 == "opterius" { print $6 ":" $7 }' "$(R /etc/passwd)")" != "$home:/usr/sbin/nologin" ]; then
  usermod "${ra[@]}" --home "$home" --shell /usr/sbin/nologin opterius
fi
# Numeric ids from the root's own files: in a scratch root the host's names mean nothing.
id_of() { awk -F: -v n="$2" '$1 == n { print $3 }' "$(R "$1")"; }
uid=$(id_of /etc/passwd opterius) gid=$(id_of /etc/group opterius)
[ -n "$uid" ] && [ -n "$gid" ] || { echo "opterius is not in $(R /etc/passwd) and $(R /etc/group)" >&2; exit 1; }
pdns_gid=$(id_of /etc/group pdns)
[ -n "$pdns_gid" ] || { echo "no pdns group in $(R /etc/group): is pdns-server installed?" >&2; exit 1; }

# 3. The app, root-owned and read-only to everyone else, swapped in whole.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ -z "$app" ]; then
  say "publishing the panel"
  dotnet publish "$repo/Opterius.Web" -c Release -o "$stage/app" --nologo -v quiet >"$stage/publish.log" 2>&1 \
    || { cat "$stage/publish.log" >&2; exit 1; }
  app=$stage/app
fi
[ -f "$app/Opterius.Web.dll" ] || { echo "$app has no Opterius.Web.dll" >&2; exit 1; }
say "installing the app in /opt/opterius"
mkdir -p "$(R /opt)"
rm -rf "$(R /opt/opterius.new)" "$(R /opt/opterius.old)"
cp -a "$app/." "$(R /opt/opterius.new)"
chown -R 0:0 "$(R /opt/opterius.new)"
chmod -R u=rwX,go=rX "$(R /opt/opterius.new)"
# Running processes keep the files they opened; the next start sees the new tree.
[ -d "$(R /opt/opterius)" ] && mv "$(R /opt/opterius)" "$(R /opt/opterius.old)"
mv "$(R /opt/opterius.new)" "$(R /opt/opterius)"
rm -rf "$(R /opt/opterius.old)"
panel() { dotnet "$(R /opt/opterius)/Opterius.Web.dll" "$@"; }

# 4. Folders: the panel's, and the server layout the agent's resources write into.
say "folders"
install -d -m 0750 -o 0 -g "$gid" "$(R /etc/opterius)"
# The agent's state (its uid ledger, uids/) is root's; the panel's is a folder inside that only it writes:
# the panel must not be able to rename or remove what the agent keeps.
install -d -m 0755 -o 0 -g 0 "$(R /var/lib/opterius)"
install -d -m 0750 -o "$uid" -g "$gid" "$(R /var/lib/opterius/panel)"
install -d -m 0700 -o 0 -g 0 "$(R /var/backups/opterius)" "$(R /var/backups/opterius/final)"
for d in /etc/nginx/sites-available /etc/nginx/sites-enabled /etc/nginx/snippets /etc/php/8.2/fpm/pool.d \
         /etc/letsencrypt/live /etc/letsencrypt/archive /etc/letsencrypt/renewal /etc/postfix /etc/dovecot \
         /var/mail/vdomains /var/www/suspended /home; do
  [ -d "$(R $d)" ] || install -d -m 0755 "$(R $d)"
done
# Debian's cron makes it 1730 root:crontab; made the same way when cron is not installed yet.
[ -d "$(R /var/spool/cron/crontabs)" ] || install -d -m 1730 "$(R /var/spool/cron/crontabs)"
# The agent's unit binds php-fpm's log read-write (`php-fpm8.2 -t` opens it): it must exist at its start.
[ -f "$(R /var/log/php8.2-fpm.log)" ] || { install -d -m 0755 "$(R /var/log)"; install -m 0600 /dev/null "$(R /var/log/php8.2-fpm.log)"; }
for f in /etc/postfix/vmailbox /etc/dovecot/users; do [ -f "$(R $f)" ] || install -m 0640 /dev/null "$(R $f)"; done
command -v postmap >/dev/null && postmap "hash:$(R /etc/postfix/vmailbox)"
# Every vhost includes this for its listen lines; kept when the operator has changed it.
[ -f "$(R /etc/nginx/snippets/opterius-listen.conf)" ] || printf 'listen 80;\nlisten [::]:80;\n' >"$(R /etc/nginx/snippets/opterius-listen.conf)"

# 5. Configuration: secrets are generated once and kept; the install's own keys are rewritten on every
#    run (an upgrade may change them), other keys the operator added are kept.
say "configuration in /etc/opterius"
ETC=$(R /etc/opterius) PDNS_CONF=$(R /etc/powerdns/pdns.d/opterius.conf) UID_=$uid GID_=$gid PDNS_GID=$pdns_gid \
SOCKET_URI=$socket_uri AGENT_SOCKET=$agent_socket PANEL_DB=$panel_db PDNS_DB=$pdns_db PANEL_USER=$panel_user \
AGENT_USER=$agent_user PDNS_USER=$pdns_user HOST=$host GIVEN=$given ADDRESSES="${addresses[*]}" NAMESERVERS="${nameservers[*]}" \
SOCKET=$socket python3 - <<'PY'
import base64, json, os, re, secrets, string
e = os.environ
etc = e["ETC"]

def load(path):
    try:
        with open(path) as f: return json.load(f)
    except FileNotFoundError: return {}

def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d: return None
        d = d[k]
    return d

def merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

def password_in(cs):
    m = re.search(r"(?:^|;)Password=([^;]*)", cs or "")
    return m.group(1) if m else None

def new_password(): return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))

def write(path, text, mode, uid, gid):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text); f.flush(); os.fsync(f.fileno())
    os.chown(tmp, uid, gid); os.chmod(tmp, mode)
    os.replace(tmp, path)

old_panel, old_agent = load(f"{etc}/panel.json"), load(f"{etc}/agent.json")
jwt = get(old_panel, "Opterius", "Jwt", "SigningKey") or base64.b64encode(secrets.token_bytes(48)).decode()
panel_pw = password_in(get(old_panel, "ConnectionStrings", "Panel")) or new_password()
agent_pw = password_in(get(old_agent, "ConnectionStrings", "MariaDbAdmin")) or new_password()
pdns_pw = None
try:
    with open(e["PDNS_CONF"]) as f:
        pdns_pw = next((l.split("=", 1)[1].strip() for l in f if l.startswith("gmysql-password=")), None)
except FileNotFoundError: pass
pdns_pw = pdns_pw or new_password()

uri = e["SOCKET_URI"]
# No secrets here: both processes read it (the panel refuses the server's own name, the agent makes zones).
provisioning = {"Hostname": e["HOST"], "Addresses": e["ADDRESSES"].split(), "Nameservers": e["NAMESERVERS"].split(),
                "SoaContact": f"hostmaster@{e['HOST']}", "StarterContent": False}
# What was detected is a default (an operator's edit stays); what was given on the command line wins.
defaults = {"Opterius": {"Provisioning": provisioning}}
given = {"Opterius": {"Provisioning": {k: v for k, v in provisioning.items() if k in e["GIVEN"].split()}}}

# The final backup policy and retention are the operator's to change (an upgrade keeps them); where archives go is the install's.
panel = merge(merge(merge(merge(defaults, {"Opterius": {"Deletion": {"FinalBackup": "on_request", "FinalBackupDays": 30}}}), old_panel), given), {
    "ConnectionStrings": {"Panel": f"{uri};User ID={e['PANEL_USER']};Password={panel_pw};Database={e['PANEL_DB']}"},
    "Opterius": {
        "Agent": {"Socket": e["AGENT_SOCKET"]},
        "Jwt": {"SigningKey": jwt},
        "License": {"Path": "/etc/opterius/license.json", "PublicKey": "/etc/opterius/license-signing.pem.pub"},
        "Https": {"Port": 8443, "ListenAddress": "0.0.0.0", "SelfSignedPath": "/var/lib/opterius/panel/selfsigned.pfx"},
        # The erasure records' signing key, made with the first record in the panel's state folder (its only writable place).
        "Deletion": {"RecordSigningKey": "/var/lib/opterius/panel/record-signing.pem"},
    },
})

# Debian's command set (the keys and placeholders of scripts/services.sh's sandbox set); the agent fills
# {username}, {uid} and {shell} with values it has validated.
commands = {
    "NginxTest": ["/usr/sbin/nginx", "-t", "-q"],
    "NginxReload": ["/usr/bin/systemctl", "reload", "nginx"],
    "PhpFpmTest": ["/usr/sbin/php-fpm8.2", "-t"],
    "PhpFpmReload": ["/usr/bin/systemctl", "reload", "php8.2-fpm"],
    "Postmap": ["/usr/sbin/postmap", "hash:/etc/postfix/vmailbox"],
    "PdnsPurge": ["/usr/bin/pdns_control", "purge"],
    "UserAdd": ["/usr/sbin/useradd", "-M", "-d", "/home/{username}", "-s", "/bin/bash", "-U", "-u", "{uid}", "{username}"],
    "UserDel": ["/usr/sbin/userdel", "{username}"],
    "UserMod": ["/usr/sbin/usermod", "-s", "{shell}", "{username}"],
    "UserLock": ["/usr/sbin/usermod", "-L", "-e", "1", "-s", "/usr/sbin/nologin", "{username}"],
    "GroupDel": ["/usr/sbin/groupdel", "{username}"],
    "KillProcesses": ["/usr/bin/kill", "-s", "KILL", "{pid}"],
    # Final backups: the agent passes the MariaDB admin credentials in a 0600 defaults file, never on this command line.
    "MariaDbDump": ["/usr/bin/mariadb-dump", "--defaults-file={defaults_file}", "--single-transaction", "--routines", "--triggers",
                    "--events", "--result-file={result_file}", "--databases", "{database}"],
    # Restores: a database's dump arrives on the client's standard input; the credentials again in a 0600 defaults file.
    "MariaDbClient": ["/usr/bin/mariadb", "--defaults-file={defaults_file}", "--batch", "--binary-mode"],
}
agent = merge(merge(merge(defaults, old_agent), given), {
    "ConnectionStrings": {
        "MariaDbAdmin": f"{uri};User ID={e['AGENT_USER']};Password={agent_pw}",
        "PowerDns": f"{uri};User ID={e['AGENT_USER']};Password={agent_pw};Database={e['PDNS_DB']}",
    },
    "Opterius": {
        "Root": "/",
        "MinUid": 1000,
        "Agent": {"Socket": e["AGENT_SOCKET"], "PanelUser": "opterius"},
        # The agent serves its socket only; the panel's HTTPS listener is not its business.
        "Https": {"Port": 0},
        "Commands": commands,
        "Deletion": {"BackupPath": "/var/backups/opterius/final/"},
    },
})
# An upgrade takes the current command set whole: a command dropped from it must not linger.
agent["Opterius"]["Commands"] = commands

uid, gid = int(e["UID_"]), int(e["GID_"])
write(f"{etc}/panel.json", json.dumps(panel, indent=2) + "\n", 0o600, uid, gid)
write(f"{etc}/agent.json", json.dumps(agent, indent=2) + "\n", 0o600, 0, 0)

os.makedirs(os.path.dirname(e["PDNS_CONF"]), exist_ok=True)
write(e["PDNS_CONF"], f"""# Written by Opterius deploy/install.sh: the zones of hosted accounts, in MariaDB.
# `launch=` (not +=) replaces Debian's bind backend from bind.conf, which sorts before this file.
launch=gmysql
gmysql-socket={e['SOCKET']}
gmysql-user={e['PDNS_USER']}
gmysql-password={pdns_pw}
gmysql-dbname={e['PDNS_DB']}
gmysql-dnssec=yes
""", 0o640, 0, int(e["PDNS_GID"]))
PY

# 6. MariaDB: one user per process, each with exactly its grants (revoked and given again on every run).
if [ $mariadb = 1 ]; then
  say "MariaDB users"
  cfg() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split(":"): d=d[k]
print(d)' "$1" "$2"; }
  pw() { sed -n 's/.*;Password=\([^;]*\).*/\1/p' <<<"$1"; }
  panel_cs=$(cfg "$(R /etc/opterius/panel.json)" ConnectionStrings:Panel)
  agent_cs=$(cfg "$(R /etc/opterius/agent.json)" ConnectionStrings:PowerDns)
  pdns_pw=$(sed -n 's/^gmysql-password=//p' "$(R /etc/powerdns/pdns.d/opterius.conf)")
  sql() { mariadb --no-defaults -S "$socket" -uroot "$@"; }
  user_sql() { # name password grants...
    local u="'$1'@'localhost'" p=$2; shift 2
    echo "CREATE USER IF NOT EXISTS $u IDENTIFIED BY '$p'; ALTER USER $u IDENTIFIED BY '$p';"
    echo "REVOKE ALL PRIVILEGES, GRANT OPTION FROM $u;"
    local g; for g in "$@"; do
      if [[ $g == *" WITH GRANT OPTION" ]]; then echo "GRANT ${g% WITH GRANT OPTION} TO $u WITH GRANT OPTION;"
      else echo "GRANT $g TO $u;"; fi
    done
  }
  {
    echo "CREATE DATABASE IF NOT EXISTS \`$panel_db\` CHARACTER SET utf8mb4;"
    echo "CREATE DATABASE IF NOT EXISTS \`$pdns_db\` CHARACTER SET utf8mb4;"
    # The panel: its own database and nothing else.
    user_sql "$panel_user" "$(pw "$panel_cs")" "ALL PRIVILEGES ON \`$panel_db\`.*"
    # The agent: every tenant database (`{username}_*` all match `%\_%`, the panel's and PowerDNS's do
    # not), with GRANT OPTION to give a tenant user ALL on `{username}\_%`; CREATE USER for tenant users;
    # the grant tables DROP USER cleans, to find and delete orphaned rows (RELOAD to flush them); SELECT on
    # the mysql database itself, which SHOW CREATE USER and SHOW GRANTS of another user need (a final backup
    # archives a tenant's users with them; a grant on its tables is not enough); the PowerDNS database,
    # whose schema `migrate` keeps.
    user_sql "$agent_user" "$(pw "$agent_cs")" \
      "ALL PRIVILEGES ON \`%\\_%\`.* WITH GRANT OPTION" \
      "CREATE USER, RELOAD ON *.*" \
      "SELECT ON mysql.*" \
      "SELECT, DELETE ON mysql.db" "SELECT, DELETE ON mysql.tables_priv" \
      "SELECT, DELETE ON mysql.columns_priv" "SELECT, DELETE ON mysql.procs_priv" \
      "ALL PRIVILEGES ON \`$pdns_db\`.*"
    # PowerDNS itself reads zones and keeps its DNSSEC keys and metadata.
    user_sql "$pdns_user" "$pdns_pw" "SELECT, INSERT, UPDATE, DELETE ON \`$pdns_db\`.*"
  } | sql

  say "migrate"
  # The panel's credentials for its schema, the agent's for PowerDNS's: no MariaDB root from .NET.
  OPTERIUS_CONFIG=$(R /etc/opterius/panel.json) ConnectionStrings__PowerDns=$agent_cs panel migrate
fi

# 7. The license: the one given, else one issued here with a signing key only root can read.
if [ -n "$license" ]; then
  install -m 0640 -o 0 -g "$gid" "$license" "$(R /etc/opterius/license.json)"
  install -m 0644 -o 0 -g 0 "$license_pub" "$(R /etc/opterius/license-signing.pem.pub)"
elif [ ! -f "$(R /etc/opterius/license.json)" ]; then
  say "issuing a self-hosted license"
  panel license issue --signing-key "$(R /etc/opterius/license-signing.pem)" --out "$(R /etc/opterius/license.json)" \
    --plan self-hosted --expires-days 36500 >/dev/null
fi
[ ! -f "$(R /etc/opterius/license-signing.pem)" ] || { chown 0:0 "$(R /etc/opterius/license-signing.pem)"; chmod 0600 "$(R /etc/opterius/license-signing.pem)"; }
chown 0:"$gid" "$(R /etc/opterius/license.json)"; chmod 0640 "$(R /etc/opterius/license.json)"
chown 0:0 "$(R /etc/opterius/license-signing.pem.pub)"; chmod 0644 "$(R /etc/opterius/license-signing.pem.pub)"

# 8. The units.
say "systemd units"
install -d -m 0755 "$(R /etc/systemd/system)"
install -m 0644 -o 0 -g 0 "$repo/deploy/opterius-panel.service" "$repo/deploy/opterius-agent.service" "$(R /etc/systemd/system)/"
if [ $systemd = 1 ]; then
  systemctl daemon-reload
  systemctl enable --now nginx php8.2-fpm postfix cron
  systemctl enable pdns opterius-agent opterius-panel
  # Restarted, not just started: an upgrade must run the new binaries and read the new configuration.
  systemctl restart pdns opterius-agent opterius-panel
  for _ in $(seq 1 60); do curl -sk -o /dev/null https://127.0.0.1:8443/ && break; sleep 1; done
  curl -sk -o /dev/null https://127.0.0.1:8443/ || echo "the panel does not answer on 8443 yet: journalctl -u opterius-panel" >&2
fi

# 9. The first admin, once: its password is shown here and nowhere else.
password=""
if [ $mariadb = 1 ]; then
  admins=$(sql -N "$panel_db" -e "SELECT COUNT(*) FROM panel_users WHERE role = 'admin'")
  if [ "$admins" = 0 ]; then
    password=$(python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20)))')
    # The password is an argument for the second this takes: a fresh server has no tenants to see it in ps.
    OPTERIUS_CONFIG=$(R /etc/opterius/panel.json) panel users create --username "$admin" --password "$password" --role admin >/dev/null
  fi
fi

echo
echo "  Opterius Panel is installed."
echo "  Sign in:  https://$host:8443   (self-signed certificate until Opterius:Https:CertificatePath is set)"
if [ -n "$password" ]; then
  echo "  Admin:    $admin"
  echo "  Password: $password   (shown once: store it now)"
elif [ $mariadb = 1 ]; then
  echo "  Admin:    unchanged (the panel already has an admin)"
else
  echo "  Admin:    none made (--no-mariadb)"
fi
echo "  Config:   /etc/opterius/panel.json (opterius, 0600), /etc/opterius/agent.json (root, 0600)"
echo "  Upgrade:  git pull && deploy/install.sh   (keeps every secret and user)"
