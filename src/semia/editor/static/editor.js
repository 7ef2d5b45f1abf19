// semia edit: the page only draws. The truth is an integer label array (one class id per pixel);
// every tool writes ids into it, never colours, so no blended canvas pixel can reach the server.
// The server's API is documented in semia/editor/server.py.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const resultImg = $("result");
  const VIEW = 512; // the longest side of both views on screen, in CSS pixels
  const UNDO_LIMIT = 200;

  const state = {
    session: null, // session JSON of the server
    width: 0,
    height: 0,
    palette: [], // [[r, g, b]] per class id
    source: null, // Uint8Array (H * W): what the eraser restores (the photo's own labels)
    start: null, // Uint8Array (H * W): what Reset restores
    target: null, // Uint8Array (H * W): the layer being edited (a layout, a mask or a sketch)
    task: "layout", // what the result is: "layout" (a new layout), "remove", "sketch"
    layers: {}, // the layers of the tasks not shown now: task -> {target, source, start, undo, redo, size}
    labels: null, // Uint8Array (H * W): the photo's own labels (every task draws over them)
    sketchWithLayout: false, // sketch task: send the layout too (labels + edges)
    photo: null, // Uint8ClampedArray (H * W * 4): the photo's pixels
    tool: "brush",
    cls: 0,
    size: 8,
    opacity: 0.6,
    undo: [],
    redo: [],
    method: "analogy",
    seed: 0,
    drag: null, // the pointer gesture in progress
    timer: null, // debounce of result requests
    inflight: null, // AbortController of the result request in flight
    pending: false, // a result request is scheduled or in flight
    resultVersion: 0, // results shown so far
    lastLatency: null, // seconds from request to shown result
    ganTimer: null,
    frame: null, // the last rendered ImageData
    mode: "edit", // "edit": a photo with labels, its tasks; "scribble": strokes to label it
    maxSize: 256, // the server's photo size (longest side)
    scribblePalette: [], // stroke colours of scribble mode
    scribbleFile: null, // the photo being scribbled on
  };
  const NONE = 255; // scribble mode: no stroke on this pixel

  // ---------------------------------------------------------------------------------------------
  // messages

  function status(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.error || response.statusText;
    } catch (e) {
      return `${response.status} ${response.statusText}`;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // sessions

  function decodeIds(b64) {
    const bin = atob(b64);
    const ids = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) ids[i] = bin.charCodeAt(i);
    return ids;
  }

  function hexToRgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }

  // the RGBA pixels of an image the server makes (the photo, its edge map)
  async function fetchPixels(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(await errorText(response));
    const bitmap = await createImageBitmap(await response.blob());
    const off = document.createElement("canvas");
    off.width = bitmap.width;
    off.height = bitmap.height;
    const octx = off.getContext("2d");
    octx.drawImage(bitmap, 0, 0);
    return octx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  }

  async function loadPhoto(sid) {
    return fetchPixels(`/api/sessions/${sid}/photo.png`);
  }

  async function openSession(json) {
    const previous = state.session;
    state.photo = await loadPhoto(json.session);
    state.session = json;
    state.width = json.width;
    state.height = json.height;
    state.palette = json.classes.map((c) => hexToRgb(c.colour));
    state.labels = decodeIds(json.labels);
    state.source = state.labels;
    state.start = state.labels;
    state.target = state.labels.slice();
    state.undo = [];
    state.redo = [];
    state.task = "layout";
    state.layers = {};
    showTask();
    state.cls = Math.min(state.cls, state.palette.length - 1);
    canvas.width = json.width;
    canvas.height = json.height;
    const scale = Math.min(VIEW / json.width, VIEW / json.height);
    for (const el of [canvas, resultImg]) {
      el.style.width = `${Math.round(json.width * scale)}px`;
      el.style.height = `${Math.round(json.height * scale)}px`;
    }
    setMode("edit");
    buildPalette(json.classes);
    setMethod("analogy");
    showTraining(json.gan);
    if (json.gan.state === "running") pollTraining();
    render();
    status(`${json.name}: ${json.width}×${json.height} px, ${json.classes.length} labels`);
    if (previous) fetch(`/api/sessions/${previous.session}`, { method: "DELETE" });
    requestResult();
  }

  async function openExample(name) {
    const response = await fetch("/api/sessions/example", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(name ? { name } : {}),
    });
    if (!response.ok) throw new Error(await errorText(response));
    await openSession(await response.json());
  }

  async function openUpload(event) {
    event.preventDefault();
    const photo = $("photo-file").files[0];
    const label = $("label-file").files[0];
    if (!photo) {
      status("choose a photo (and its label map, or none to make one from scribbles)", true);
      return;
    }
    if (!label) {
      await startScribble(photo);
      return;
    }
    const form = new FormData();
    form.append("photo", photo);
    form.append("label", label);
    status("reading the upload…");
    const response = await fetch("/api/sessions", { method: "POST", body: form });
    if (!response.ok) {
      status(await errorText(response), true);
      return;
    }
    await openSession(await response.json());
  }

  function setMode(mode) {
    state.mode = mode;
    document.body.dataset.mode = mode;
    showTask();
  }

  // ---------------------------------------------------------------------------------------------
  // tasks: each edits its own layer with the same tools; switching keeps every layer and history

  const TASK_TOOLS = {
    layout: ["brush", "rect", "fill", "eraser", "move", "copy"],
    remove: ["brush", "rect", "fill", "eraser"], // fill: mark the whole region under the click
    sketch: ["brush", "eraser"],
  };

  async function newLayer(task) {
    const n = state.width * state.height;
    if (task === "layout") return { source: state.labels, start: state.labels, size: 8 };
    if (task === "remove") return { source: new Uint8Array(n), start: new Uint8Array(n), size: 8 };
    // sketch: starts from the photo's own edge map, which the user redraws
    const rgba = await fetchPixels(`/api/sessions/${state.session.session}/edges.png`);
    const lines = new Uint8Array(n);
    for (let i = 0; i < n; i++) lines[i] = rgba[4 * i] < 128 ? 1 : 0;
    return { source: new Uint8Array(n), start: lines, size: 2 };
  }

  async function setTask(task) {
    if (task === state.task || state.mode !== "edit") return;
    const layer = state.layers[task] || (await newLayer(task));
    state.layers[state.task] = {
      target: state.target, source: state.source, start: state.start, undo: state.undo, redo: state.redo, size: state.size,
    };
    state.task = task;
    state.source = layer.source;
    state.start = layer.start;
    state.target = layer.target || layer.start.slice();
    state.undo = layer.undo || [];
    state.redo = layer.redo || [];
    setSize(layer.size);
    showTask();
    render();
    scheduleResult(0);
  }

  function showTask() {
    document.body.dataset.task = state.task;
    const titles = { layout: "Target layout", remove: "What to remove", sketch: "Sketch of the new layout" };
    $("canvas-title").textContent = state.mode === "edit" ? titles[state.task] : "Scribbles";
    for (const b of document.querySelectorAll("[data-task]")) b.classList.toggle("active", b.dataset.task === state.task);
    const allowed = state.mode === "edit" ? TASK_TOOLS[state.task] : TASK_TOOLS.layout;
    for (const b of document.querySelectorAll("[data-tool]")) b.disabled = !allowed.includes(b.dataset.tool);
    if (!allowed.includes(state.tool)) selectTool("brush");
    showMethods();
  }

  // what a tool writes: a class id (layout, scribbles) or 1 (a mask or line pixel)
  function paintValue() {
    return state.mode === "edit" && state.task !== "layout" ? 1 : state.cls;
  }

  // scribble mode: the photo alone, strokes in a few colours, then the server segments it
  async function startScribble(file) {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, state.maxSize / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const off = document.createElement("canvas");
    off.width = width;
    off.height = height;
    const octx = off.getContext("2d");
    octx.drawImage(bitmap, 0, 0, width, height);
    state.photo = octx.getImageData(0, 0, width, height).data;
    state.scribbleFile = file;
    state.width = width;
    state.height = height;
    state.palette = state.scribblePalette.map(hexToRgb);
    state.source = new Uint8Array(width * height).fill(NONE);
    state.start = state.source;
    state.labels = null;
    state.task = "layout";
    state.layers = {};
    state.target = state.source.slice();
    state.undo = [];
    state.redo = [];
    canvas.width = width;
    canvas.height = height;
    const view = Math.min(VIEW / width, VIEW / height);
    canvas.style.width = `${Math.round(width * view)}px`;
    canvas.style.height = `${Math.round(height * view)}px`;
    setMode("scribble");
    buildPalette(state.scribblePalette.map((colour, k) => ({ colour, name: `class ${k + 1}`, value: null })));
    selectTool("brush");
    render();
    status("scribble mode: a few strokes per region, one colour per class, then Segment");
  }

  async function segmentScribbles() {
    const form = new FormData();
    form.append("photo", state.scribbleFile);
    form.append("scribbles", new Blob([state.target]), "scribbles.bin");
    form.append("width", String(state.width));
    form.append("height", String(state.height));
    status("segmenting…");
    const response = await fetch("/api/sessions/segment", { method: "POST", body: form });
    if (!response.ok) {
      status(await errorText(response), true);
      return;
    }
    await openSession(await response.json());
  }

  // ---------------------------------------------------------------------------------------------
  // drawing the view: the photo under the label colours at the chosen opacity

  function render(ids = state.target, extra = null) {
    if (!state.photo) return;
    const n = state.width * state.height;
    const image = ctx.createImageData(state.width, state.height);
    const out = image.data;
    const photo = state.photo;
    const a = state.opacity;
    const pal = state.palette;
    if (state.mode === "edit" && state.task !== "layout") {
      renderLayer(ids, image.data, photo, a, pal);
      ctx.putImageData(image, 0, 0);
      state.frame = image;
      if (extra) extra();
      return;
    }
    for (let i = 0; i < n; i++) {
      const c = pal[ids[i]];
      const j = 4 * i;
      if (c === undefined) {
        out[j] = photo[j]; // no label (scribble mode): the photo alone
        out[j + 1] = photo[j + 1];
        out[j + 2] = photo[j + 2];
        out[j + 3] = 255;
        continue;
      }
      out[j] = photo[j] * (1 - a) + c[0] * a;
      out[j + 1] = photo[j + 1] * (1 - a) + c[1] * a;
      out[j + 2] = photo[j + 2] * (1 - a) + c[2] * a;
      out[j + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    state.frame = image;
    if (extra) extra();
  }

  // remove: the photo under its labels, the mask in red; sketch: lines on the photo faded to paper
  function renderLayer(layer, out, photo, a, pal) {
    const n = state.width * state.height;
    const labels = state.labels;
    for (let i = 0; i < n; i++) {
      const j = 4 * i;
      out[j + 3] = 255;
      if (state.task === "sketch") {
        for (let k = 0; k < 3; k++) out[j + k] = layer[i] ? 0 : photo[j + k] * (1 - a) + 255 * a;
        continue;
      }
      const c = pal[labels[i]];
      for (let k = 0; k < 3; k++) {
        const v = photo[j + k] * (1 - a / 2) + c[k] * (a / 2);
        out[j + k] = layer[i] ? v * 0.45 + (k === 0 ? 140 : 0) : v;
      }
    }
  }

  // the brush outline under the pointer (drawn over the last frame; the labels are untouched)
  function showBrush(event) {
    if (!state.frame) return;
    ctx.putImageData(state.frame, 0, 0);
    if (!event || (state.tool !== "brush" && state.tool !== "eraser")) return;
    const [x, y] = pixelAt(event);
    ctx.beginPath();
    ctx.arc(x + 0.5, y + 0.5, Math.max(state.size / 2, 0.5), 0, 2 * Math.PI);
    ctx.lineWidth = Math.max(0.5, state.width / 512);
    ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
    ctx.stroke();
  }

  // ---------------------------------------------------------------------------------------------
  // tools: each writes class ids into a label array

  function pixelAt(event) {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - r.left) * state.width) / r.width);
    const y = Math.floor(((event.clientY - r.top) * state.height) / r.height);
    return [Math.max(0, Math.min(state.width - 1, x)), Math.max(0, Math.min(state.height - 1, y))];
  }

  function stamp(ids, x, y, erase) {
    const r = state.size / 2;
    const reach = Math.ceil(r);
    const w = state.width;
    const h = state.height;
    const value = paintValue();
    for (let dy = -reach; dy <= reach; dy++) {
      const yy = y + dy;
      if (yy < 0 || yy >= h) continue;
      for (let dx = -reach; dx <= reach; dx++) {
        const xx = x + dx;
        if (xx < 0 || xx >= w || dx * dx + dy * dy > r * r) continue;
        const i = yy * w + xx;
        ids[i] = erase ? state.source[i] : value;
      }
    }
  }

  function line(ids, x0, y0, x1, y1, erase) {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let s = 1; s <= steps; s++) {
      stamp(ids, Math.round(x0 + ((x1 - x0) * s) / steps), Math.round(y0 + ((y1 - y0) * s) / steps), erase);
    }
  }

  function fillRect(ids, [x0, y0], [x1, y1]) {
    const w = state.width;
    for (let y = Math.min(y0, y1); y <= Math.max(y0, y1); y++) {
      ids.fill(paintValue(), y * w + Math.min(x0, x1), y * w + Math.max(x0, x1) + 1);
    }
  }

  // the 4-connected region of equal ids around (x, y), as a list of pixel indices
  function region(ids, x, y) {
    const w = state.width;
    const h = state.height;
    const seed = y * w + x;
    const cls = ids[seed];
    const seen = new Uint8Array(w * h);
    const stack = [seed];
    const out = [];
    seen[seed] = 1;
    while (stack.length) {
      const i = stack.pop();
      out.push(i);
      const px = i % w;
      const neighbours = [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i >= w ? i - w : -1, i < w * (h - 1) ? i + w : -1];
      for (const j of neighbours) {
        if (j >= 0 && !seen[j] && ids[j] === cls) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    return out;
  }

  // layout: fill the region of equal labels; remove: mask the whole region of the photo's labels
  function bucket(ids, x, y) {
    const removing = state.mode === "edit" && state.task === "remove";
    for (const i of region(removing ? state.labels : ids, x, y)) ids[i] = paintValue();
  }

  // ids with a region removed: its pixels take the label of the nearest pixel outside it
  function withoutRegion(ids, pixels) {
    const w = state.width;
    const h = state.height;
    const out = ids.slice();
    const hole = new Uint8Array(w * h);
    for (const i of pixels) hole[i] = 1;
    let frontier = [];
    for (const i of pixels) {
      const px = i % w;
      for (const j of [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i >= w ? i - w : -1, i < w * (h - 1) ? i + w : -1]) {
        if (j >= 0 && !hole[j]) {
          out[i] = ids[j];
          hole[i] = 2; // filled
          frontier.push(i);
          break;
        }
      }
    }
    while (frontier.length) {
      const next = [];
      for (const i of frontier) {
        const px = i % w;
        for (const j of [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i >= w ? i - w : -1, i < w * (h - 1) ? i + w : -1]) {
          if (j >= 0 && hole[j] === 1) {
            out[j] = out[i];
            hole[j] = 2;
            next.push(j);
          }
        }
      }
      frontier = next;
    }
    return out;
  }

  function pasteRegion(base, pixels, cls, dx, dy) {
    const out = base.slice();
    const w = state.width;
    const h = state.height;
    for (const i of pixels) {
      const x = (i % w) + dx;
      const y = Math.floor(i / w) + dy;
      if (x >= 0 && x < w && y >= 0 && y < h) out[y * w + x] = cls;
    }
    return out;
  }

  function commit(before) {
    let changed = false;
    for (let i = 0; i < before.length; i++) {
      if (before[i] !== state.target[i]) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    state.undo.push(before);
    if (state.undo.length > UNDO_LIMIT) state.undo.shift();
    state.redo = [];
    scheduleResult();
  }

  function onPointerDown(event) {
    if (!state.target || event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = pixelAt(event);
    const before = state.target.slice();
    const tool = state.tool;
    if (tool === "brush" || tool === "eraser") {
      stamp(state.target, x, y, tool === "eraser");
      state.drag = { tool, before, last: [x, y] };
      render();
    } else if (tool === "rect") {
      state.drag = { tool, before, start: [x, y], end: [x, y] };
      render(state.target, () => outline([x, y], [x, y]));
    } else if (tool === "fill") {
      bucket(state.target, x, y);
      render();
      commit(before);
    } else if (tool === "move" || tool === "copy") {
      const pixels = region(state.target, x, y);
      const base = tool === "move" ? withoutRegion(state.target, pixels) : state.target.slice();
      state.drag = { tool, before, start: [x, y], pixels, base, cls: state.target[y * state.width + x], preview: null };
    }
  }

  function onPointerMove(event) {
    const drag = state.drag;
    if (!drag) {
      showBrush(event);
      return;
    }
    const [x, y] = pixelAt(event);
    if (drag.tool === "brush" || drag.tool === "eraser") {
      line(state.target, drag.last[0], drag.last[1], x, y, drag.tool === "eraser");
      drag.last = [x, y];
      render();
      showBrush(event);
    } else if (drag.tool === "rect") {
      drag.end = [x, y];
      render(state.target, () => outline(drag.start, drag.end));
    } else if (drag.tool === "move" || drag.tool === "copy") {
      drag.preview = pasteRegion(drag.base, drag.pixels, drag.cls, x - drag.start[0], y - drag.start[1]);
      render(drag.preview);
    }
  }

  function onPointerUp(event) {
    const drag = state.drag;
    if (!drag) return;
    state.drag = null;
    if (event.type === "pointercancel") {
      state.target = drag.before;
      render();
      return;
    }
    if (drag.tool === "rect") {
      fillRect(state.target, drag.start, pixelAt(event));
    } else if (drag.tool === "move" || drag.tool === "copy") {
      const [x, y] = pixelAt(event);
      const dx = x - drag.start[0];
      const dy = y - drag.start[1];
      if (dx !== 0 || dy !== 0) state.target = pasteRegion(drag.base, drag.pixels, drag.cls, dx, dy);
    }
    render();
    commit(drag.before);
  }

  function outline([x0, y0], [x1, y1]) {
    const [r, g, b] = state.task === "layout" || state.mode !== "edit" ? state.palette[state.cls] : [200, 0, 0];
    ctx.strokeStyle = `rgb(${r},${g},${b})`;
    ctx.lineWidth = 1;
    ctx.strokeRect(Math.min(x0, x1) + 0.5, Math.min(y0, y1) + 0.5, Math.abs(x1 - x0), Math.abs(y1 - y0));
  }

  function undo() {
    if (!state.undo.length) return;
    state.redo.push(state.target);
    state.target = state.undo.pop();
    render();
    scheduleResult();
  }

  function redo() {
    if (!state.redo.length) return;
    state.undo.push(state.target);
    state.target = state.redo.pop();
    render();
    scheduleResult();
  }

  function reset() {
    const before = state.target.slice();
    state.target = state.start.slice();
    render();
    commit(before);
  }

  // ---------------------------------------------------------------------------------------------
  // results: debounced; a newer request aborts the one in flight (and the server drops it)

  function scheduleResult(delay = 120) {
    if (!state.session || state.mode !== "edit") return;
    clearTimeout(state.timer);
    state.pending = true;
    state.timer = setTimeout(requestResult, delay);
  }

  async function requestResult() {
    clearTimeout(state.timer);
    if (!state.session || state.mode !== "edit") return;
    if (state.inflight) state.inflight.abort();
    const control = new AbortController();
    state.inflight = control;
    state.pending = true;
    const method = state.method;
    const task = state.task;
    const started = performance.now();
    try {
      const request = resultRequest(task);
      if (!request) {
        await showPhoto(control);
        return;
      }
      const query = `method=${method}&seed=${state.seed}`;
      const response = await fetch(`/api/sessions/${state.session.session}/${request.path}?${query}`, {
        method: "POST",
        headers: request.headers,
        body: request.body,
        signal: control.signal,
      });
      if (response.status === 409) return; // superseded by a newer request
      if (!response.ok) {
        status(await errorText(response), true);
        return;
      }
      const blob = await response.blob();
      if (control !== state.inflight) return;
      const url = URL.createObjectURL(blob);
      const old = resultImg.src;
      resultImg.src = url;
      await resultImg.decode();
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      state.lastLatency = (performance.now() - started) / 1000;
      state.resultVersion += 1;
      resultImg.dataset.version = String(state.resultVersion);
      const label = method === "gan" ? "GAN" : `training-free, seed ${state.seed}`;
      const what = { layout: "", remove: "removal, ", sketch: "sketch, " }[task];
      status(`${what}${label}: ${state.lastLatency.toFixed(2)} s`);
    } catch (error) {
      if (error.name !== "AbortError") status(`result failed: ${error.message}`, true);
    } finally {
      if (state.inflight === control) {
        state.inflight = null;
        state.pending = false;
      }
    }
  }

  // the request for the task's result, or null when its layer is empty (nothing to remove, no line)
  function resultRequest(task) {
    const raw = { "Content-Type": "application/octet-stream" };
    if (task === "layout") return { path: "result", headers: raw, body: state.target.slice() };
    if (!state.target.some((v) => v)) return null;
    if (task === "remove") return { path: "remove", headers: raw, body: state.target.slice() };
    if (!state.sketchWithLayout) return { path: "sketch", headers: raw, body: state.target.slice() };
    const layout = state.layers.layout ? state.layers.layout.target || state.labels : state.labels;
    const form = new FormData();
    form.append("sketch", new Blob([state.target.slice()]), "sketch.bin");
    form.append("target", new Blob([layout.slice()]), "target.bin");
    return { path: "sketch", headers: {}, body: form };
  }

  // an empty mask or sketch: the photo itself is the result, and the status says what to do
  async function showPhoto(control) {
    const response = await fetch(`/api/sessions/${state.session.session}/photo.png`, { signal: control.signal });
    const blob = await response.blob();
    if (control !== state.inflight) return;
    const old = resultImg.src;
    resultImg.src = URL.createObjectURL(blob);
    await resultImg.decode();
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    state.resultVersion += 1;
    resultImg.dataset.version = String(state.resultVersion);
    status(state.task === "remove" ? "paint over what to remove" : "draw the new layout's lines");
  }

  // resolves once no result is scheduled or in flight
  async function settled() {
    while (state.pending || state.inflight) await new Promise((r) => setTimeout(r, 40));
  }

  async function download(kind) {
    await settled();
    const a = document.createElement("a");
    const method = kind === "result" ? `&method=${state.method}` : "";
    a.href = `/api/sessions/${state.session.session}/download/${kind}?task=${state.task}${method}`;
    a.download = "";
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function setMethod(method) {
    state.method = method;
    for (const radio of document.querySelectorAll("input[name=method]")) radio.checked = radio.value === method;
    $("seed").disabled = $("variant").disabled = method === "gan";
  }

  // the GAN serves layouts and removals once trained; sketches need a model trained on edges
  function showMethods() {
    const trained = $("train-status").dataset.state === "done";
    $("method-gan").disabled = !trained || state.task === "sketch";
    $("method-gan").parentElement.title =
      state.task === "sketch" ? "the editor's GAN is trained on label maps; sketches use the training-free method" : "";
    if (state.method === "gan" && $("method-gan").disabled) setMethod("analogy");
  }

  // ---------------------------------------------------------------------------------------------
  // the GAN: trained in a background process on the server

  function formatSeconds(s) {
    if (s === null || s === undefined) return "…";
    const m = Math.floor(s / 60);
    return m ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
  }

  function showTraining(info) {
    const running = info.state === "running";
    $("train").disabled = running || info.state === "done";
    $("cancel-train").disabled = !running;
    $("train-progress").value = info.total ? info.step / info.total : 0;
    const text = {
      none: "",
      running: `${info.step}/${info.total}, ETA ${formatSeconds(info.eta_s)}`,
      done: "GAN ready",
      cancelled: `cancelled at ${info.step}/${info.total}`,
      failed: `failed: ${info.error}`,
    }[info.state];
    $("train-status").textContent = text || "";
    $("train-status").dataset.state = info.state;
    showMethods();
  }

  async function pollTraining() {
    clearTimeout(state.ganTimer);
    const sid = state.session && state.session.session;
    if (!sid) return;
    const response = await fetch(`/api/sessions/${sid}/train`);
    if (!state.session || sid !== state.session.session) return;
    if (!response.ok) {
      status(await errorText(response), true);
      return;
    }
    const info = await response.json();
    showTraining(info);
    if (info.state === "running") {
      state.ganTimer = setTimeout(pollTraining, 700);
    } else if (info.state === "done") {
      if (!$("method-gan").disabled) setMethod("gan");
      scheduleResult(0);
    }
  }

  async function train(method) {
    const response = await fetch(`/api/sessions/${state.session.session}/train`, { method });
    if (!response.ok) {
      status(await errorText(response), true);
      return;
    }
    showTraining(await response.json());
    pollTraining();
  }

  // ---------------------------------------------------------------------------------------------
  // controls

  function buildPalette(classes) {
    const box = $("palette");
    box.replaceChildren();
    const total = state.width * state.height;
    classes.forEach((c, k) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.class = String(k);
      button.title = `${c.colour}${c.value !== null ? ` (value ${c.value})` : ""}`;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = c.colour;
      const text = document.createElement("span");
      const share = c.pixels === undefined ? "" : ` ${((100 * c.pixels) / total).toFixed(1)} %`;
      text.textContent = `${k < 9 ? k + 1 : "·"}  ${c.name || c.colour}${share}`;
      button.append(swatch, text);
      button.addEventListener("click", () => selectClass(k));
      box.append(button);
    });
    selectClass(state.cls);
  }

  function selectClass(k) {
    state.cls = k;
    for (const b of $("palette").children) b.classList.toggle("active", Number(b.dataset.class) === k);
  }

  function selectTool(tool) {
    state.tool = tool;
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
  }

  function setSize(size) {
    state.size = Math.max(1, Math.min(64, size));
    $("brush-size").value = String(state.size);
    $("brush-size-value").textContent = String(state.size);
  }

  function onKey(event) {
    if (event.target.matches("input[type=number], input[type=text], select")) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) redo();
      else undo();
      return;
    }
    if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault();
      redo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tools = { b: "brush", r: "rect", f: "fill", e: "eraser", m: "move", d: "copy" };
    const button = tools[key] && document.querySelector(`[data-tool=${tools[key]}]`);
    if (button && !button.disabled) selectTool(tools[key]);
    else if (key === "[") setSize(state.size - 1);
    else if (key === "]") setSize(state.size + 1);
    else if (/^[1-9]$/.test(key) && Number(key) <= state.palette.length) selectClass(Number(key) - 1);
  }

  async function init() {
    for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => selectTool(b.dataset.tool));
    $("brush-size").addEventListener("input", (e) => setSize(Number(e.target.value)));
    $("opacity").addEventListener("input", (e) => {
      state.opacity = Number(e.target.value) / 100;
      render();
    });
    for (const b of document.querySelectorAll("[data-task]")) {
      b.addEventListener("click", () => setTask(b.dataset.task).catch((err) => status(err.message, true)));
    }
    $("sketch-layout").addEventListener("change", (e) => {
      state.sketchWithLayout = e.target.checked;
      scheduleResult(0);
    });
    $("undo").addEventListener("click", undo);
    $("redo").addEventListener("click", redo);
    $("reset").addEventListener("click", reset);
    $("seed").addEventListener("change", (e) => {
      state.seed = Math.max(0, Math.floor(Number(e.target.value) || 0));
      scheduleResult(0);
    });
    $("variant").addEventListener("click", () => {
      state.seed += 1;
      $("seed").value = String(state.seed);
      scheduleResult(0);
    });
    for (const radio of document.querySelectorAll("input[name=method]")) {
      radio.addEventListener("change", () => {
        setMethod(radio.value);
        scheduleResult(0);
      });
    }
    $("segment").addEventListener("click", () => segmentScribbles().catch((err) => status(err.message, true)));
    $("train").addEventListener("click", () => train("POST"));
    $("cancel-train").addEventListener("click", () => train("DELETE"));
    for (const b of document.querySelectorAll(".download")) b.addEventListener("click", () => download(b.dataset.kind));
    $("open-form").addEventListener("submit", (e) => openUpload(e).catch((err) => status(err.message, true)));
    $("example-select").addEventListener("change", (e) => openExample(e.target.value).catch((err) => status(err.message, true)));
    canvas.addEventListener("pointerdown", onPointerDown);
    canvas.addEventListener("pointermove", onPointerMove);
    canvas.addEventListener("pointerup", onPointerUp);
    canvas.addEventListener("pointercancel", onPointerUp);
    canvas.addEventListener("pointerleave", () => state.drag || showBrush(null));
    document.addEventListener("keydown", onKey);
    selectTool("brush");
    setSize(state.size);

    const response = await fetch("/api/examples");
    const examples = await response.json();
    state.maxSize = examples.max_size;
    state.scribblePalette = examples.scribble_palette;
    const select = $("example-select");
    for (const name of examples.examples) select.append(new Option(name, name, false, name === examples.start));
    if (!examples.examples.includes(examples.start)) select.prepend(new Option(examples.start, "", true, true));
    await openExample(null);
    document.body.dataset.ready = "1";
  }

  // for scripts and tests: the live state and a few actions
  window.semiaEditor = { state, undo, redo, render, settled, requestResult, selectClass, selectTool, setTask };

  init().catch((error) => status(`could not start: ${error.message}`, true));
})();
