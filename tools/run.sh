#!/bin/sh
# make run: start the whole system on its embedded default (SQLite, self-signed certificate,
# localhost). The front (shard/) and the session manager (sm/) are not built yet.
set -eu
build=$1
if [ ! -x "$build/bin/jabshard-sm" ] || [ ! -x "$build/bin/jabshard-c2s" ]; then
    echo "jabshard: the session manager and the front are not built yet (see the open issues);"
    echo "jabshard: 'make check' runs everything that exists so far."
    exit 1
fi
