#!/bin/sh
# Commands of storefleet's Medusa image (run from /app, the build output):
#   start      medusa start: server, worker or both by MEDUSA_WORKER_MODE (default)
#   migrate    medusa db:migrate (idempotent; run before the server starts)
#   bootstrap  region, stock location, shipping, storefront key, sample product
#              (idempotent: a Job after every migration)
#   invite     one-time admin link for INVITE_EMAIL: exactly one JSON line on
#              stdout, Medusa's log on stderr
#   await-release / mark-release
#              wait for / record the chart revision's migrations and bootstrap
#              (storefleet-release.js; the chart's init containers and Job)
#   anything else is executed as is (e.g. `medusa user --help`, `sh`).
set -eu
[ $# -gt 0 ] || set -- start
cmd="$1"
shift
case "$cmd" in
  start)
    exec medusa start "$@"
    ;;
  migrate)
    exec medusa db:migrate "$@"
    ;;
  bootstrap)
    exec medusa exec ./src/scripts/bootstrap.js "$@"
    ;;
  await-release|mark-release)
    exec node /app/storefleet-release.js "$cmd"
    ;;
  invite)
    # The script writes its result to fd 3 = our stdout; everything else
    # (Medusa's logger prints to stdout) goes to stderr.
    STOREFLEET_RESULT_FD=3 exec medusa exec ./src/scripts/invite.js "$@" 3>&1 1>&2
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac
