#!/usr/bin/env bash
# Vendor NiiVue's prebuilt, self-contained UMD bundle into the package, so that the reader workstation needs no
# network at run time. Run once per update (needs npm and the npm registry): scripts/update_viewer.sh [VERSION]
#
# One patch is applied (scripts/patch_niivue.py): NiiVue 0.x computes a gradient texture for 3D lighting each
# time a volume is loaded, even when nothing is rendered in 3D; with `nv.opts.skipGradient = true` (set by the
# reading page, which shows 2D slices only) that pass is skipped. Upstream NiiVue 1.0 skips it for unlit volumes.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${1:-0.69.0}"
DEST=src/sarcomri/read/static/vendor/niivue
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@niivue/niivue@$VERSION" >/dev/null && tar xzf niivue-niivue-*.tgz)
upstream=$(sha256sum "$tmp/package/dist/niivue.umd.js" | cut -d' ' -f1)
python3 scripts/patch_niivue.py "$tmp/package/dist/niivue.umd.js" "$DEST/niivue.umd.js"
sha=$(sha256sum "$DEST/niivue.umd.js" | cut -d' ' -f1)
license=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['license'])" "$tmp/package/package.json")
printf '@niivue/niivue %s (%s), dist/niivue.umd.js sha256 %s\npatched by scripts/patch_niivue.py: sha256 %s\n%s\n' \
  "$VERSION" "$license" "$upstream" "$sha" \
  "Updated by scripts/update_viewer.sh; see README.md (The reader workstation's viewer)." > "$DEST/VERSION"
echo "NiiVue $VERSION vendored into $DEST ($license), patched"
