"""Patch NiiVue's UMD bundle for the reading page (run by scripts/update_viewer.sh): SOURCE -> DEST.

NiiVue 0.x builds a gradient texture (a blur and a Sobel pass over every slice) whenever the first volume of a
viewer is loaded. Only 3D rendering with lighting reads it; the reading page shows 2D slices. In software WebGL
(a radiology workstation without a GPU, or the headless tests) the pass is about three quarters of a volume's
load. The patch makes the pass conditional on ``opts.skipGradient`` not being set, so every other use of NiiVue is
unchanged. It fails, leaving DEST untouched, when the bundle does not contain the expected code exactly once (a
new NiiVue version: check whether the patch is still needed, and adapt it).
"""

import sys
from pathlib import Path

ORIGINAL = "g===0&&(this.volumeTexture=i,this.gradientTexture=Ti({"
PATCHED = "g===0&&(this.volumeTexture=i,this.gradientTexture=this.opts.skipGradient?this.gradientTexture:Ti({"


def patch(text: str) -> str:
    """``text`` with the gradient pass made optional; ValueError when the code to patch is not there once."""
    if text.count(ORIGINAL) != 1:
        raise ValueError(f"expected the gradient pass once in the bundle, found it {text.count(ORIGINAL)} times")
    return text.replace(ORIGINAL, PATCHED)


if __name__ == "__main__":
    source, dest = map(Path, sys.argv[1:3])
    try:
        patched = patch(source.read_text(encoding="utf-8"))
    except ValueError as err:
        sys.exit(f"patch_niivue: {err}")
    dest.write_text(patched, encoding="utf-8")
