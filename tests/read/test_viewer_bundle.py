"""The vendored NiiVue bundle: the file shipped is the one VERSION records, carries scripts/patch_niivue.py's one
change, and the change does what it says in real Chromium (the reading page's viewers skip the gradient pass for
3D lighting; a NiiVue without ``skipGradient`` still computes it, and both show the same slice)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import pytest

from .conftest import login

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "src" / "sarcomri" / "read" / "static" / "vendor" / "niivue"


def _patcher():
    spec = importlib.util.spec_from_file_location("patch_niivue", ROOT / "scripts" / "patch_niivue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_bundle_is_the_recorded_patched_file():
    patcher = _patcher()
    text = (VENDOR / "niivue.umd.js").read_text(encoding="utf-8")
    recorded = re.search(r"patched by scripts/patch_niivue.py: sha256 ([0-9a-f]{64})", (VENDOR / "VERSION").read_text())
    assert recorded and hashlib.sha256(text.encode()).hexdigest() == recorded.group(1)
    assert text.count(patcher.PATCHED) == 1 and patcher.ORIGINAL not in text
    assert "opts.skipGradient" in (VENDOR / "NOTICE").read_text().replace("\n", " ")


def test_the_patch_refuses_a_bundle_it_does_not_recognise():
    patcher = _patcher()
    assert patcher.patch("a" + patcher.ORIGINAL + "b") == "a" + patcher.PATCHED + "b"
    for text in ("no such code", patcher.ORIGINAL * 2):
        with pytest.raises(ValueError, match="gradient pass"):
            patcher.patch(text)


def test_the_reading_page_skips_the_gradient_pass_and_shows_the_same_slice(browser, reading_run):
    from sarcomri.read.server import background_server, create_app
    from sarcomri.read.store import ReadingStore

    run, db, tokens = reading_run
    with background_server(create_app(run, ReadingStore(db))) as base:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        login(page, base, "r1", tokens["r1"])
        page.click("button[data-session=first]")
        page.wait_for_function("window.sarcomriReader.loaded === window.sarcomriReader.me.sequences.length",
                               timeout=30000)
        case, seq = page.evaluate("[window.sarcomriReader.case, window.sarcomriReader.me.sequences[0]]")
        # the page's first viewer against a NiiVue with the gradient pass, same volume, same canvas size
        out = page.evaluate("""async (url) => {
          const nv = window.sarcomriReader.viewers[0];
          const canvas = document.createElement('canvas');
          canvas.width = nv.gl.canvas.width; canvas.height = nv.gl.canvas.height;
          const frame = document.createElement('div');
          frame.style.width = nv.gl.canvas.width + 'px'; frame.style.height = nv.gl.canvas.height + 'px';
          frame.appendChild(canvas); document.body.appendChild(frame);
          const lit = new niivue.Niivue({ backColor: [0, 0, 0, 1], dragAndDropEnabled: false });
          await lit.attachToCanvas(canvas);
          lit.setSliceType(lit.sliceTypeAxial);
          await lit.loadVolumes([{ url, name: 'v.nii.gz' }]);
          lit.scene.crosshairPos = [0.5, 0.5, 0.5]; lit.opts.crosshairWidth = 0; lit.drawScene();
          nv.opts.crosshairWidth = 0; nv.drawScene();
          const pixels = (v) => {
            const gl = v.gl, w = gl.drawingBufferWidth, h = gl.drawingBufferHeight, a = new Uint8Array(w * h * 4);
            gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, a);
            return a;
          };
          const a = pixels(nv), b = pixels(lit);
          let differ = 0, bright = 0;
          for (let i = 0; i < a.length; i++) { if (a[i] !== b[i]) differ++; if (a[i] > 50) bright++; }
          return { skipped: nv.gradientTexture === null, lit: lit.gradientTexture !== null,
                   size: [a.length, b.length], differ, bright };
        }""", f"/api/volume/{case}/{seq}")
    assert out["skipped"] and out["lit"], out
    assert out["size"][0] == out["size"][1] and out["bright"] > 1000  # an image was drawn, not a black canvas
    assert out["differ"] == 0, out


def test_a_viewer_that_cannot_load_is_said_on_the_session_list(browser, reading_run):
    """The page loads NiiVue without holding up the login and the session list; when the bundle cannot be
    fetched the reader is told, and choosing a session says so instead of showing an empty case."""
    from sarcomri.read.server import background_server, create_app
    from sarcomri.read.store import ReadingStore

    run, db, tokens = reading_run
    with background_server(create_app(run, ReadingStore(db))) as base:
        page = browser.new_context().new_page()
        page.route("**/niivue.umd.js", lambda route: route.abort())
        login(page, base, "r1", tokens["r1"])
        page.wait_for_function("document.getElementById('sessions-message').textContent !== ''", timeout=10000)
        assert page.text_content("#sessions-message") == "the image viewer could not be loaded"
        page.click("button[data-session=first]")
        page.wait_for_timeout(300)
        assert page.is_visible("#sessions") and not page.is_visible("#reading")
        assert page.text_content("#sessions-message") == "the image viewer could not be loaded"
