#!/usr/bin/env bash
# pg-throwaway.sh start|stop|down|up|url [DIR]
#
# Starts (or stops) a disposable PostgreSQL cluster for the storage tests, listening
# only on 127.0.0.1 with trust authentication. "start" prints the URL to export as
# FMTUNE_TEST_POSTGRES, e.g.
#
#   export FMTUNE_TEST_POSTGRES=$(bash storage/testdata/pg-throwaway.sh start)
#   go test -race ./storage/
#   bash storage/testdata/pg-throwaway.sh stop
#
# "down" stops the server of a started cluster and keeps its data; "up" starts it again
# (the outage tests use them). DIR defaults to $FMTUNE_PG_DIR or /tmp/fmtune-pg; PORT to
# $FMTUNE_PG_PORT or 55432.
# Needs Debian's postgresql package (apt-get install -y postgresql). Run as root (the
# cluster runs as the postgres user) or as an ordinary user (it runs as that user).
set -euo pipefail

cmd=${1:-}
dir=${2:-${FMTUNE_PG_DIR:-/tmp/fmtune-pg}}
port=${FMTUNE_PG_PORT:-55432}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
	echo "pg-throwaway: PostgreSQL server binaries not found; apt-get install -y postgresql" >&2
	exit 1
fi

as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		su postgres -s /bin/sh -c "$*"
	else
		sh -c "$*"
	fi
}

url="postgresql://postgres@127.0.0.1:${port}/postgres"

server_up() {
	as_owner "'$bindir/pg_ctl' -D '$dir/data' -o \"-k '$dir' -h 127.0.0.1 -p $port -c fsync=off\" -l '$dir/log' -w start" >/dev/null || {
		cat "$dir/log" >&2
		exit 1
	}
}

case "$cmd" in
start)
	if [[ -f "$dir/data/postmaster.pid" ]] && as_owner "'$bindir/pg_ctl' -D '$dir/data' status" >/dev/null 2>&1; then
		echo "$url"
		exit 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
	as_owner "'$bindir/initdb' -D '$dir/data' -A trust -U postgres --no-sync" >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	server_up
	echo "$url"
	;;
down)
	as_owner "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null
	;;
up)
	server_up
	;;
stop)
	if [[ -d "$dir/data" ]]; then
		as_owner "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
url)
	echo "$url"
	;;
*)
	echo "usage: $0 start|stop|down|up|url [DIR]" >&2
	exit 2
	;;
esac
