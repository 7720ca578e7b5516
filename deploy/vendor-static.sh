#!/bin/sh
# Install the web UI's browser libraries with npm (versions pinned in
# package-lock.json) and copy the one file the page loads into mining's static
# folder. The copy is gitignored: the repository never carries minified code.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/mining/static/mining/vendor"

if ! command -v npm >/dev/null 2>&1; then
    echo "vendor-static: npm is required (apt-get install -y npm)" >&2
    exit 1
fi

cd "$ROOT"
npm ci --omit=dev --no-audit --no-fund
mkdir -p "$DEST"
cp node_modules/chart.js/dist/chart.umd.min.js "$DEST/chart.umd.min.js"
# The licence travels with the code we serve.
cp node_modules/chart.js/LICENSE.md "$DEST/chart.js.LICENSE.md"
echo "vendored chart.js $(node -p 'require("./node_modules/chart.js/package.json").version') into $DEST"
