#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the tests of the RDB study storage.
#   eval "$(bash .ci/postgres.sh start)"   # exports ORCHESTRATOR_TEST_POSTGRES_URL (and _DATA)
#   bash .ci/postgres.sh stop
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

case "${1:-}" in
start)
    if [ -z "$(pg_bin)" ]; then
        # Debian's server package; its own cluster is not started (ours runs from a temp folder)
        (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            postgresql) >&2
    fi
    BIN="$(pg_bin)"
    DATA="$(mktemp -d /tmp/orchestrator-pg.XXXXXX)"
    RUN=()
    if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
        chown postgres: "$DATA"
        RUN=(runuser -u postgres --)
    fi
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "${RUN[@]}" "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -o "-h 127.0.0.1 -p $PORT -k $DATA" -l "$DATA/server.log" -w start >/dev/null
    echo "export ORCHESTRATOR_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/postgres"
    echo "export ORCHESTRATOR_TEST_POSTGRES_DATA=$DATA"
    ;;
stop)
    DATA="${ORCHESTRATOR_TEST_POSTGRES_DATA:?start the server first}"
    RUN=()
    [ "$(id -u)" = 0 ] && RUN=(runuser -u postgres --)
    "${RUN[@]}" "$(pg_bin)/pg_ctl" -D "$DATA" -m fast stop >/dev/null || true
    rm -rf "$DATA"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
