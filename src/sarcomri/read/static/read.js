/* sarcomri reader workstation: the reading page. Talks to the server's JSON API (sarcomri/read/server.py); the
 * images are shown with NiiVue (vendor/niivue, shipped in the package). No network beyond the server itself.
 * window.sarcomriReader exposes the page's state to the browser tests (loaded volumes, the shown slice). */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const state = { me: null, session: null, case: null, viewers: [], loaded: 0 };
  window.sarcomriReader = state;

  async function api(path, body) {
    const opts = { credentials: "same-origin", headers: { "Content-Type": "application/json" } };
    if (body !== undefined) { opts.method = "POST"; opts.body = JSON.stringify(body); }
    const res = await fetch(path, opts);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { const err = new Error(data.detail || res.statusText); err.status = res.status; throw err; }
    return data;
  }

  function show(id) {
    for (const s of ["login", "sessions", "reading"]) $(s).hidden = s !== id;
  }

  async function start() {
    try { await loadMe(); } catch (err) { if (err.status === 401) show("login"); else $("login-message").textContent = err.message; }
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    try {
      await api("/api/login", { name: form.get("name"), token: form.get("token") });
      $("login-message").textContent = "";
      await loadMe();
    } catch (err) { $("login-message").textContent = err.message; }
  });

  async function loadMe() {
    state.me = await api("/api/me");
    $("who").textContent = `${state.me.reader} (${state.me.group})`;
    $("study").textContent = `Study ${state.me.study}: ${state.me.sequences.join(", ")}`;
    const list = $("session-list");
    list.replaceChildren();
    for (const s of state.me.sessions) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.session = s.session;
      button.textContent = `${s.session === "first" ? "Unaided" : "AI-assisted"} session: ${s.read} of ${s.cases} read`;
      button.disabled = !s.open || s.read >= s.cases;
      button.addEventListener("click", () => startSession(s.session).catch((err) => {
        show("sessions");
        $("sessions-message").textContent = err.message;
      }));
      li.appendChild(button);
      if (!s.open) li.appendChild(document.createTextNode(` (closed: ${s.reason})`));
      else if (s.read >= s.cases) li.appendChild(document.createTextNode(" (done)"));
      list.appendChild(li);
    }
    show("sessions");
    // made while the reader chooses a session (after the list is painted): the first case then only loads volumes
    requestAnimationFrame(() => setTimeout(() => {
      performance.mark("sessions-painted");  // the page load's end (benchmarks/read.py)
      ensureViewers().catch((err) => { $("sessions-message").textContent = err.message; });
    }, 0));
  }

  async function startSession(session) {
    state.session = session;
    const next = await api(`/api/next/${session}`);
    if (next.case === null) { await loadMe(); return; }
    await showCase(next.case, { ...next.state, after: next.after });
  }

  $("back").addEventListener("click", () => loadMe());

  async function showCase(caseId, sessionState) {
    state.case = caseId;
    state.loaded = 0;
    state.overlaid = 0;
    state.overlays = [];
    await api("/api/open", { session: state.session, case: caseId });
    $("case-title").textContent = `Case ${caseId}`;
    $("case-count").textContent = `${sessionState.read + 1} of ${sessionState.cases} in this session`;
    $("read-message").textContent = "";
    const ai = $("ai");
    ai.hidden = true;
    if (state.session === "ai_assisted") {
      const out = await api(`/api/ai/${caseId}`);
      const rows = out.sequences.map((s) => `<tr><td>${s.sequence}</td><td>${s.likelihood.toFixed(3)}</td><td>${s.vote === null ? "" : (s.vote > 0 ? "+1" : "-1")}</td></tr>`);
      $("ai-table").innerHTML = `<tr><th>sequence</th><th>likelihood</th><th>vote</th></tr>${rows.join("")}`;
      $("ai-decision").textContent = out.decision === null ? (out.note || "") :
        `Summed score ${out.summed_score} (threshold ${out.threshold}): ${out.decision}`;
      state.overlays = out.overlays || [];
      $("overlay-toggle").hidden = !state.overlays.some((o) => o.kind === "mask");
      $("gradcam-toggle").hidden = !state.overlays.some((o) => o.kind === "gradcam");
      $("show-overlay").checked = true;
      $("show-gradcam").checked = true;
      ai.hidden = false;
    }
    show("reading");
    await ensureViewers();
    for (const nv of state.viewers) nv.resizeListener();  // made while hidden: sized now that they are laid out
    await buildViewers(caseId);
    prefetch(sessionState.after);
    buildRating();
  }

  /** The AI's overlays: the segmentation model's tumour mask over every sequence's view (red), and each
   * sequence's Grad-CAM over its own view (inferno). Each volume's kind is kept for the check boxes. */
  const OPACITY = { mask: 0.45, gradcam: 0.5 };
  async function addOverlays(nv, seq) {
    nv.overlayKinds = [];
    for (const o of state.overlays) {
      if (o.kind === "gradcam" && o.group !== seq) continue;
      const colormap = o.kind === "gradcam" ? "inferno" : "red";
      await nv.addVolumeFromUrl({ url: o.url, name: `${o.group}_${o.kind}.nii.gz`, colormap, opacity: OPACITY[o.kind] });
      nv.overlayKinds.push(o.kind);
    }
    if (state.overlays.length) state.overlaid += 1;
  }

  function toggleOverlays(kind, shown) {
    for (const nv of state.viewers) {
      (nv.overlayKinds || []).forEach((k, i) => { if (k === kind) nv.setOpacity(i + 1, shown ? OPACITY[kind] : 0); });
    }
  }
  $("show-overlay").addEventListener("change", (ev) => toggleOverlays("mask", ev.target.checked));
  $("show-gradcam").addEventListener("change", (ev) => toggleOverlays("gradcam", ev.target.checked));

  /** One NiiVue per sequence, made once (a WebGL context and its shaders are the slow part); each case only
   * replaces the volumes. Returns the same promise to every caller. */
  function ensureViewers() {
    if (!state.viewersMade) state.viewersMade = makeViewers();
    return state.viewersMade;
  }

  /** NiiVue's bundle (vendor/niivue), loaded from the start without holding up the login and the session list:
   * a promise of ``window.niivue``. */
  const viewerLibrary = new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "vendor/niivue/niivue.umd.js";
    script.addEventListener("load", () => resolve(window.niivue));
    script.addEventListener("error", () => reject(new Error("the image viewer could not be loaded")));
    document.head.appendChild(script);
  });
  viewerLibrary.catch(() => {});  // reported where it is needed (the session list, a chosen session)

  async function makeViewers() {
    await viewerLibrary;
    const box = $("viewers");
    box.replaceChildren();
    for (const seq of state.me.sequences) {
      const div = document.createElement("div");
      div.className = "viewer";
      div.dataset.sequence = seq;
      const frame = document.createElement("div");  // NiiVue sizes its canvas to this frame
      frame.className = "frame";
      const canvas = document.createElement("canvas");
      frame.appendChild(canvas);
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = seq;
      div.append(frame, name);
      box.appendChild(div);
      await new Promise((resolve) => setTimeout(resolve, 0));  // one viewer per task: the page stays responsive
      const nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false, dragAndDropEnabled: false });
      nv.opts.skipGradient = true;  // 2D slices only: no gradient pass for 3D lighting (vendor/niivue/NOTICE)
      await nv.attachToCanvas(canvas);
      nv.setSliceType(nv.sliceTypeAxial);
      state.viewers.push(nv);
    }
    link();
  }

  /** Zoom every view by ``factor`` about its centre (1 / 0: back to the whole slice, centred). */
  function zoom(factor) {
    for (const nv of state.viewers) {
      const p = nv.scene.pan2Dxyzmm;
      nv.setPan2Dxyzmm(factor === 0 ? [0, 0, 0, 1] : [p[0], p[1], p[2], Math.min(Math.max(p[3] * factor, 0.5), 8)]);
    }
  }
  state.zoom = () => state.viewers.map((nv) => nv.scene.pan2Dxyzmm[3]);
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("zoom-reset").addEventListener("click", () => zoom(0));
  $("drag-mode").addEventListener("change", (ev) => {
    for (const nv of state.viewers) nv.opts.dragMode = niivue.DRAG_MODE[ev.target.value];
  });

  function volumeUrl(caseId, seq) { return `/api/volume/${caseId}/${seq}`; }

  async function buildViewers(caseId) {
    state.me.sequences.forEach((seq, i) => {
      const nv = state.viewers[i];
      nv.loadVolumes([{ url: volumeUrl(caseId, seq), name: `${seq}.nii.gz` }])
        .then(async () => {
          nv.scene.crosshairPos = [0.5, 0.5, 0.5];  // each case opens at its middle slice
          nv.drawScene();
          if (state.case === caseId) state.loaded += 1;
          if (state.case === caseId) await addOverlays(nv, seq);
        })
        .catch((err) => { $("read-message").textContent = `cannot show ${seq}: ${err}`; });
    });
  }

  /** Fetch the following case's volumes into the browser's cache while this one is read. */
  function prefetch(caseId) {
    if (!caseId) return;
    for (const seq of state.me.sequences) fetch(volumeUrl(caseId, seq), { credentials: "same-origin" }).catch(() => {});
  }

  function link() {
    for (const nv of state.viewers) nv.broadcastTo(state.viewers.filter((o) => o !== nv), { "2d": true, "3d": false });
  }

  /** The slice (0-based voxel index along z) viewer i shows. */
  state.slice = (i) => Math.round(state.viewers[i].frac2vox(state.viewers[i].scene.crosshairPos)[2]);

  function radios(name, options) {
    const set = document.createElement("fieldset");
    for (const [value, label] of options) {
      const l = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio"; input.name = name; input.value = value; input.required = true;
      l.append(input, ` ${label}`);
      set.appendChild(l);
    }
    return set;
  }

  /** The form's field name of ``field`` for what is rated (``all``: the whole case; else one sequence). */
  const fieldName = (field, target) => (target === "all" ? field : `${field}:${target}`);

  function buildRating() {
    const form = $("rating");
    form.replaceChildren();
    const pos = state.me.positive, neg = state.me.negative;
    for (const target of state.me.rated) {
      const box = document.createElement("div");
      box.className = "rate";
      box.dataset.rated = target;
      if (target !== "all") {
        const title = document.createElement("h4");
        title.textContent = target;
        box.appendChild(title);
      }
      if (state.me.scale === "six_point") {
        box.appendChild(radios(fieldName("confidence", target), [[0, `definitely ${pos}`], [1, `probably ${pos}`],
          [2, `possibly ${pos}`], [3, `possibly ${neg}`], [4, `probably ${neg}`], [5, `definitely ${neg}`]]));
      } else {
        box.appendChild(radios(fieldName("call", target), [["positive", pos], ["negative", neg]]));
        box.appendChild(radios(fieldName("certainty", target), [["high", "high certainty"], ["medium", "medium certainty"],
                                                                ["low", "low certainty"]]));
      }
      form.appendChild(box);
    }
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.textContent = "Save and next case";
    form.appendChild(submit);
  }

  $("rating").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    try {
      for (const target of state.me.rated) {  // one committed read per rated sequence (or the whole case)
        const body = { session: state.session, case: state.case, sequence: target };
        if (state.me.scale === "six_point") body.confidence = Number(form.get(fieldName("confidence", target)));
        else {
          body.call_positive = form.get(fieldName("call", target)) === "positive";
          body.certainty = form.get(fieldName("certainty", target));
        }
        await api("/api/read", body);
      }
      await startSession(state.session);
    } catch (err) { $("read-message").textContent = err.message; }
  });

  start();
})();
