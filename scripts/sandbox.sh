#!/usr/bin/env bash
# Prepares a sandbox server root: the folders a hosting server has, and its own user database
# (etc/passwd, group, shadow, gshadow, login.defs) so `useradd -R ROOT` never touches the host's.
# Sandbox uids and gids start at 200000, far above the host's. Idempotent.
#   scripts/sandbox.sh ROOT
set -euo pipefail
root=${1:?usage: sandbox.sh ROOT}
mkdir -p "$root"
cd "$root"
mkdir -p home etc/skel var/spool/cron/crontabs var/mail/vdomains etc/dovecot etc/postfix \
  etc/nginx/sites-available etc/nginx/sites-enabled etc/letsencrypt/live etc/letsencrypt/archive \
  etc/letsencrypt/renewal etc/php/8.2/fpm/pool.d run/php var/www/suspended var/lib/opterius
# The shared temp folders, world-writable with the sticky bit as on a real server.
mkdir -p tmp var/tmp dev/shm
chmod 1777 tmp var/tmp dev/shm
[ -f etc/passwd ] || printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >etc/passwd
[ -f etc/group ] || printf 'root:x:0:\nnogroup:x:65534:\n' >etc/group
[ -f etc/shadow ] || printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >etc/shadow
[ -f etc/gshadow ] || printf 'root:*::\nnogroup:*::\n' >etc/gshadow
chmod 640 etc/shadow etc/gshadow
[ -f etc/login.defs ] || cat >etc/login.defs <<'DEFS'
UID_MIN 200000
UID_MAX 299999
GID_MIN 200000
GID_MAX 299999
SYS_UID_MIN 100
SYS_UID_MAX 999
SYS_GID_MIN 100
SYS_GID_MAX 999
CREATE_HOME yes
USERGROUPS_ENAB yes
ENCRYPT_METHOD SHA512
DEFS
for f in etc/dovecot/users etc/postfix/vmailbox; do [ -f "$f" ] || : >"$f"; done
