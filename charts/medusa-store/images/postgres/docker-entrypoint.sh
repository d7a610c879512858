#!/usr/bin/env bash
# Entrypoint of storefleet's PostgreSQL image, compatible with the official
# image's environment:
#   POSTGRES_PASSWORD          password of POSTGRES_USER (required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER              superuser created by initdb (default postgres)
#   POSTGRES_DB                database created on first start (default $POSTGRES_USER)
#   PGDATA                     data directory (default /var/lib/postgresql/data;
#                              use a subdirectory of a volume: initdb needs 0700)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP clients (default scram-sha-256)
#   PGPORT                     port (default 5432)
# On first start (no $PGDATA/PG_VERSION) it runs initdb, creates the database,
# runs /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh, then execs postgres
# listening on all addresses. Runs as any uid (999 in the image; an unknown
# uid gets a passwd entry through nss_wrapper); as root it drops to postgres.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# `docker run image -c foo=bar` means `postgres -c foo=bar`.
if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGPORT="${PGPORT:-5432}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
SOCKET_DIR="${POSTGRES_SOCKET_DIR:-/var/run/postgresql}"

if [ "$1" != 'postgres' ]; then
  exec "$@"
fi

# As root (docker without --user): own the directories, then re-exec as postgres.
if [ "$(id -u)" = '0' ]; then
  mkdir -p "$PGDATA" "$SOCKET_DIR"
  chown -R postgres:postgres "$PGDATA" "$SOCKET_DIR"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

# initdb and postgres look the running uid up; give an unknown uid (OpenShift,
# a pod's runAsUser) an entry without touching /etc/passwd.
if ! getent passwd "$(id -u)" > /dev/null 2>&1; then
  wrapper=""
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    [ -e "$lib" ] && { wrapper="$lib"; break; }
  done
  if [ -n "$wrapper" ]; then
    NSS_WRAPPER_PASSWD="$(mktemp)"
    NSS_WRAPPER_GROUP="$(mktemp)"
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
    printf 'postgres:x:%s:\n' "$(id -g)" > "$NSS_WRAPPER_GROUP"
    export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
  fi
fi

mkdir -p "$PGDATA" 2>/dev/null || { log "cannot create PGDATA=$PGDATA"; exit 1; }
chmod 700 "$PGDATA" 2>/dev/null || true
mkdir -p "$SOCKET_DIR" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
    log "PGDATA=$PGDATA is not empty but holds no database (lost+found of a volume?): use a subdirectory"
    exit 1
  fi
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
    log "POSTGRES_PASSWORD is not set: refusing to initialise a database nobody can log into"
    log "(set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password)"
    exit 1
  fi

  log "initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
  pwfile="$(mktemp)"
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments.
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="$POSTGRES_HOST_AUTH_METHOD" --encoding=UTF8 --locale=C.UTF-8 \
    ${POSTGRES_INITDB_ARGS:-} > /dev/null
  rm -f "$pwfile"
  trap - EXIT

  {
    echo
    echo "# storefleet image"
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '$SOCKET_DIR'"
    echo "password_encryption = scram-sha-256"
  } >> "$PGDATA/postgresql.conf"
  # initdb wrote local (socket) trust and host lines for 127.0.0.1/::1; add
  # every other address with the same method.
  {
    echo
    echo "# storefleet image: TCP clients from anywhere authenticate"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
  } >> "$PGDATA/pg_hba.conf"

  # Set up the database on a server that accepts no TCP connection.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $PGPORT -k $SOCKET_DIR" -w -t 60 start > /dev/null
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --host "$SOCKET_DIR" --port "$PGPORT" --username "$POSTGRES_USER" --dbname postgres)
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    exists="$("${psql[@]}" -tA --set db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")"
    if [ "$exists" != '1' ]; then
      "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db"' > /dev/null
    fi
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh) log "running $f"; . "$f" ;;
      *.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" > /dev/null ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" > /dev/null ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop > /dev/null
  log "initialised; starting postgres"
else
  log "database in $PGDATA exists; starting postgres"
fi

unset POSTGRES_PASSWORD
exec "$@"
