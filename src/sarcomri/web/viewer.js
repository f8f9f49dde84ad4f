/* sarcomri slice viewer: a dependency-free viewer of one series embedded in a page (no network, no build step).
 *
 * Each <div class="slice-viewer" hidden> holds a <script type="application/json"> with the series' crop:
 *   shape [z, h, w], spacing [x, y, z] mm, voxels (base64 little-endian uint16; raw = offset + value * scale),
 *   window [low, high] in raw units, mask (base64 uint8, 1 = tumour), cam (base64 uint8, 0 = none, 1..255 the
 *   Grad-CAM evidence) on slice cam_slice, start (the first slice shown).
 * The viewer is shown only when this script runs (with JavaScript off the page's static figures remain).
 * Scroll (wheel, arrow keys or the slider) moves through the slices; dragging sets the window (left/right:
 * width, up/down: level); the check boxes show the tumour's contour and the Grad-CAM overlay.
 */
(function () {
  "use strict";
  var AMBER = [255, 176, 0];
  // inferno at 0, 0.25, 0.5, 0.75, 1 (matplotlib), interpolated linearly
  var INFERNO = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];

  function decode(b64, Type) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  function inferno(t) {
    var x = Math.min(Math.max(t, 0), 1) * (INFERNO.length - 1), i = Math.min(Math.floor(x), INFERNO.length - 2);
    var f = x - i, a = INFERNO[i], b = INFERNO[i + 1];
    return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
  }

  function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3); }

  function build(root) {
    var data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    var z = data.shape[0], h = data.shape[1], w = data.shape[2], n = h * w;
    var voxels = decode(data.voxels, Uint16Array), mask = decode(data.mask, Uint8Array);
    var cam = data.cam ? decode(data.cam, Uint8Array) : null;
    var state = { slice: data.start, low: data.window[0], high: data.window[1], contour: true, gradcam: false };

    var canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h; canvas.tabIndex = 0;
    canvas.className = "viewer-canvas";
    var side = 384, ratio = (h * data.spacing[1]) / (w * data.spacing[0]);
    canvas.style.width = (ratio > 1 ? side / ratio : side) + "px";
    canvas.style.height = (ratio > 1 ? side : side * ratio) + "px";
    var slider = document.createElement("input");
    slider.type = "range"; slider.min = 1; slider.max = z; slider.value = state.slice + 1;
    slider.setAttribute("aria-label", "slice");
    var label = document.createElement("div");
    label.className = "viewer-label";
    var controls = document.createElement("div");
    controls.className = "viewer-controls";
    function box(name, text, checked, disabled) {
      var l = document.createElement("label"), c = document.createElement("input");
      c.type = "checkbox"; c.name = name; c.checked = checked; c.disabled = disabled;
      l.appendChild(c); l.appendChild(document.createTextNode(" " + text));
      controls.appendChild(l);
      return c;
    }
    var contourBox = box("contour", "tumour contour", true, false);
    var camBox = box("gradcam", cam ? "Grad-CAM (slice " + (data.cam_slice + 1) + ")" : "Grad-CAM (none)", false, !cam);
    var reset = document.createElement("button");
    reset.type = "button"; reset.textContent = "reset window";
    controls.appendChild(reset);
    root.appendChild(canvas); root.appendChild(slider); root.appendChild(label); root.appendChild(controls);

    var ctx = canvas.getContext("2d"), image = ctx.createImageData(w, h);
    function draw() {
      var k = state.slice, base = k * n, px = image.data, span = Math.max(state.high - state.low, 1e-9);
      for (var i = 0; i < n; i++) {
        var raw = data.offset + voxels[base + i] * data.scale;
        var g = Math.round(255 * Math.min(Math.max((raw - state.low) / span, 0), 1));
        var r = g, gg = g, b = g;
        if (state.gradcam && cam && k === data.cam_slice && cam[i] > 0) {
          var c = inferno((cam[i] - 1) / 254);
          r = 0.45 * r + 0.55 * c[0]; gg = 0.45 * gg + 0.55 * c[1]; b = 0.45 * b + 0.55 * c[2];
        }
        if (state.contour && mask[base + i]) {
          var y = Math.floor(i / w), x = i % w;
          var edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[base + i - 1] ||
            !mask[base + i + 1] || !mask[base + i - w] || !mask[base + i + w];
          if (edge) { r = AMBER[0]; gg = AMBER[1]; b = AMBER[2]; }
        }
        px[4 * i] = r; px[4 * i + 1] = gg; px[4 * i + 2] = b; px[4 * i + 3] = 255;
      }
      ctx.putImageData(image, 0, 0);
      var width = state.high - state.low, level = (state.high + state.low) / 2;
      label.textContent = data.sequence + ": slice " + (k + 1) + " of " + z + " \u00b7 window " + fmt(width) +
        ", level " + fmt(level);
      canvas.dataset.slice = k; canvas.dataset.window = width; canvas.dataset.level = level;
      slider.value = k + 1;
    }
    function go(k) { state.slice = Math.min(Math.max(k, 0), z - 1); draw(); }
    slider.addEventListener("input", function () { go(parseInt(slider.value, 10) - 1); });
    canvas.addEventListener("wheel", function (e) { e.preventDefault(); go(state.slice + (e.deltaY > 0 ? 1 : -1)); });
    canvas.addEventListener("keydown", function (e) {
      if (e.key === "ArrowUp" || e.key === "ArrowRight") { go(state.slice + 1); e.preventDefault(); }
      if (e.key === "ArrowDown" || e.key === "ArrowLeft") { go(state.slice - 1); e.preventDefault(); }
    });
    var drag = null;
    canvas.addEventListener("mousedown", function (e) {
      drag = { x: e.clientX, y: e.clientY, low: state.low, high: state.high }; e.preventDefault();
    });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var width = Math.max((drag.high - drag.low) * Math.exp((e.clientX - drag.x) / 150), 1e-6);
      var level = (drag.high + drag.low) / 2 - (e.clientY - drag.y) * (drag.high - drag.low) / 200;
      state.low = level - width / 2; state.high = level + width / 2; draw();
    });
    contourBox.addEventListener("change", function () { state.contour = contourBox.checked; draw(); });
    camBox.addEventListener("change", function () {
      state.gradcam = camBox.checked;
      if (state.gradcam) state.slice = data.cam_slice;
      draw();
    });
    reset.addEventListener("click", function () { state.low = data.window[0]; state.high = data.window[1]; draw(); });
    root.hidden = false;
    draw();
  }

  function start() {
    var roots = document.querySelectorAll("div.slice-viewer");
    for (var i = 0; i < roots.length; i++) build(roots[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
