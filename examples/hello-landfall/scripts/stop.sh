#!/bin/sh
# Stops the running copy of the site, if any (its pid is kept beside it).
set -eu
pidfile="$LANDFALL_EXAMPLE_DIR/server.pid"
if [ -f "$pidfile" ]; then
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
  echo "stopped the previous version"
else
  echo "nothing running yet"
fi
