#!/bin/sh
# Copies this revision's site next to the host's previous one.
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$LANDFALL_EXAMPLE_DIR/www"
rm -rf "$LANDFALL_EXAMPLE_DIR/www.new"
cp -r "$here/site" "$LANDFALL_EXAMPLE_DIR/www.new"
sed -i "s/@DEPLOYMENT_ID@/$DEPLOYMENT_ID/" "$LANDFALL_EXAMPLE_DIR/www.new/index.html"
rm -rf "$LANDFALL_EXAMPLE_DIR/www"
mv "$LANDFALL_EXAMPLE_DIR/www.new" "$LANDFALL_EXAMPLE_DIR/www"
echo "site for $DEPLOYMENT_ID in $LANDFALL_EXAMPLE_DIR/www"
