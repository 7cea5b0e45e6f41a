#!/bin/sh
# Serves the site on the host's port. The server is detached from the hook (its own session, and
# stdin, stdout and stderr redirected), as a hook that starts a daemon should do: the agent ends
# whatever is left of a hook's process group.
set -eu
cd "$LANDFALL_EXAMPLE_DIR/www"
setsid python3 -m http.server "$LANDFALL_EXAMPLE_PORT" --bind 127.0.0.1 \
  >"$LANDFALL_EXAMPLE_DIR/server.log" 2>&1 </dev/null &
echo $! >"$LANDFALL_EXAMPLE_DIR/server.pid"
echo "serving on http://127.0.0.1:$LANDFALL_EXAMPLE_PORT/"
