#!/bin/sh
# Passes once the site answers with this deployment's page.
set -eu
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if python3 - "$LANDFALL_EXAMPLE_PORT" "$DEPLOYMENT_ID" <<'PY'
import sys, urllib.request
port, deployment = sys.argv[1], sys.argv[2]
page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
sys.exit(0 if deployment in page else 1)
PY
  then
    echo "the site answers with $DEPLOYMENT_ID"
    exit 0
  fi
  sleep 0.5
done
echo "the site did not answer" >&2
exit 1
