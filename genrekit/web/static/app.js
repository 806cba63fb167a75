// genrekit web page: upload a song to the JSON API and draw what comes back.
// No libraries, no external resources: the page works offline, served by `genrekit serve`.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  // Distinct, mid-dark colours (legible next to dark text on white); one per genre in the
  // model's label order, so a genre keeps its colour from song to song.
  const PALETTE = ["#3b6fd8", "#e0702e", "#1a9a6c", "#d2457a", "#7d55d1",
                   "#b8901c", "#2a9fb0", "#8c5a3c", "#5d6b82", "#c93434"];

  const page = {
    labels: [],          // the default model's labels (colour order)
    names: {},           // label -> display name (the server's name map: hiphop is Hip-Hop)
    models: {},          // name -> /api/models entry
    maxBytes: 50 * 1024 * 1024,
    busy: false,
    last: null,          // the last result, redrawn on resize
  };

  // --- helpers ------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // A genre as people write it: the API's display name for the label (the label itself when none).
  function genreName(label) {
    return page.names[label] || label;
  }

  function colour(label) {
    let i = page.labels.indexOf(label);
    if (i < 0) {
      page.labels.push(label);
      i = page.labels.length - 1;
    }
    if (i < PALETTE.length) return PALETTE[i];
    return "hsl(" + Math.round((i * 137.5) % 360) + ", 55%, 45%)";
  }
  const pct = (p) => (100 * p).toFixed(1) + "%";
  function seconds(s) {
    if (s < 60) return (Math.round(s * 10) / 10).toFixed(1) + " s";
    const m = Math.floor(s / 60);
    const r = Math.round(s - 60 * m);
    return m + ":" + String(r).padStart(2, "0") + " min";
  }
  function timeTick(s, step) {
    if (step < 60 && s < 600) return String(Math.round(s * 10) / 10);
    return Math.floor(s / 60) + ":" + String(Math.round(s % 60)).padStart(2, "0");
  }
  function niceStep(span, maxTicks) {
    const steps = [0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (const s of steps) if (span / s <= maxTicks) return s;
    return steps[steps.length - 1];
  }
  function hzLabel(hz) {
    if (hz >= 1000) return (hz / 1000) + " kHz";
    return Math.round(hz) + " Hz";
  }
  function mb(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB";
  }

  // --- status and errors ------------------------------------------------------------------
  function setStatus(text, working) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("working", Boolean(working));
  }
  function setProgress(value) { // null: hidden; undefined: indeterminate; number: percent
    const box = $("progress-box");
    const bar = $("progress");
    if (value === null) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    if (value === undefined) bar.removeAttribute("value");
    else bar.value = value;
  }
  function showError(message, title) {
    $("error-title").textContent = title || "Could not analyse the song";
    $("error-text").textContent = message;
    $("error").hidden = false;
  }
  function clearError() {
    $("error").hidden = true;
    $("error-text").textContent = "";
  }
  function setBusy(busy) {
    page.busy = busy;
    $("file").disabled = busy;
    $("model-select").disabled = busy;
    $("drop").classList.toggle("busy", busy);
    $("drop").setAttribute("aria-disabled", busy ? "true" : "false");
    $("results").classList.toggle("stale", busy);
    $("results").setAttribute("aria-busy", busy ? "true" : "false");
  }

  // --- start-up: what the server can do -----------------------------------------------------
  async function init() {
    try {
      const [health, models] = await Promise.all([
        fetch("/api/health").then((r) => r.json()),
        fetch("/api/models").then((r) => r.json()),
      ]);
      page.maxBytes = health.max_upload_mb * 1048576;
      $("version").textContent = health.version;
      $("reports-link").hidden = !health.reports;
      const shown = ["mp3", "wav", "flac", "ogg", "m4a"].filter((f) => health.formats.includes(f));
      $("formats").textContent = shown.map((f) => f.toUpperCase()).join(", ") +
        " · up to " + health.max_upload_mb + " MB";
      for (const m of models.models) {
        page.models[m.name] = m;
        Object.assign(page.names, m.names || {});
      }
      const model = models.models.find((m) => m.default) || models.models[0];
      if (model) {
        page.labels = model.labels.slice();
        $("model-name").textContent = "Model: " + modelInWords(model);
        describeModel(model);
      }
      if (models.models.length > 1) {
        const select = $("model-select");
        for (const m of models.models) {
          const label = modelInWords(m);
          select.append(el("option", { value: m.name }, label));
        }
        select.value = model.name;
        select.addEventListener("change", () => describeModel(page.models[select.value]));
        $("model-pick").hidden = false;
      }
    } catch (err) {
      $("model-name").textContent = "";
      showError("The server did not answer (" + err.message + "). Is genrekit serve still running?", "No connection");
    }
  }

  // the model by name and in words ("gtzan-musicnn — MSD-musicnn tags + logistic regression/SVM vote,
  // GTZAN's ten genres"), not its card's recipe ("vote(logreg(C=0.05) + ...)")
  function modelInWords(model) {
    return model.name + (model.card.summary ? " \u2014 " + model.card.summary : "");
  }

  function describeModel(model) {
    const list = $("about-list");
    list.replaceChildren();
    const add = (k, v) => {
      if (v) list.append(el("dt", {}, k), el("dd", {}, v));
    };
    add("Model", modelInWords(model));
    add("Recipe", model.card.model ? model.card.model + " (" + model.kind + ")" : "");
    add("Genres", model.labels.map((g) => (model.names || {})[g] || g).join(", "));
    add("Windows", model.window ? model.window + " s, every " + model.hop + " s" : "the whole song");
    const figures = model.card.figures || {};
    for (const [name, f] of Object.entries(figures)) {
      if (!f || typeof f.track_accuracy !== "number") continue;
      add("Accuracy", pct(f.track_accuracy) + " of " + (f.n_tracks || "?") + " tracks (" + name.replace(/_/g, " ") + ")");
    }
    add("Data", model.card.data);
    add("Evaluation", model.card.split);
    add("Limitations", model.card.limitations);
    $("about").hidden = list.children.length === 0;
  }

  // --- upload ---------------------------------------------------------------------------------
  function analyse(file) {
    if (page.busy || !file) return;
    clearError();
    if (file.size === 0) {
      showError(file.name + " is empty (0 bytes).");
      return;
    }
    if (file.size > page.maxBytes) {
      showError(file.name + " is " + mb(file.size) + "; this server accepts up to " + mb(page.maxBytes) + ".", "File too large");
      return;
    }
    setBusy(true);
    setProgress(0);
    setStatus("Uploading " + file.name + "… 0%", true);

    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    const chosen = $("model-select").value;
    xhr.open("POST", "/api/classify" + (chosen ? "?model=" + encodeURIComponent(chosen) : ""));
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const p = Math.round((100 * e.loaded) / e.total);
      setProgress(p);
      setStatus("Uploading " + file.name + "… " + p + "%", true);
    });
    xhr.upload.addEventListener("load", () => {
      setProgress(undefined);
      setStatus("Analysing " + file.name + "…", true);
    });
    xhr.addEventListener("load", () => {
      setBusy(false);
      setProgress(null);
      const body = xhr.response;
      if (xhr.status === 200 && body && body.label) {
        render(body);
        setStatus("Done: " + file.name + " sounds most like " + (body.name || genreName(body.label)) + " (" + pct(body.probabilities[body.label]) + ").");
        return;
      }
      const reason = body && body.error ? body.error : "the server answered " + xhr.status + " " + xhr.statusText;
      setStatus("");
      showError(reason.startsWith(file.name) ? reason : file.name + ": " + reason);
    });
    xhr.addEventListener("error", () => {
      setBusy(false);
      setProgress(null);
      setStatus("");
      showError("The upload of " + file.name + " failed: the connection to the server was lost.", "Upload failed");
    });
    xhr.send(form);
  }

  // --- drawing ------------------------------------------------------------------------------
  // What a person reads: a song of none of the model's genres is "none of these (closest: Rock)";
  // a model of several genres per song names every genre above its threshold ("Rock + Blues").
  function shownGenres(result, shown) {
    // an unknown song keeps the genres its tags give (genrekit/models/tag_genres.py)
    if (result.unknown) {
      const own = result.probabilities || {};
      const fromTags = (Array.isArray(result.genres) ? result.genres : []).filter((g) => !(g in own));
      return ["none of these (closest: " + shown + ")"].concat(fromTags.map(genreName)).join(" + ");
    }
    if (!Array.isArray(result.genres)) return shown;
    return result.genres.length ? result.genres.map(genreName).join(" + ")
                                : "none above threshold (closest: " + shown + ")";
  }

  function render(result) {
    page.last = result;
    $("results").hidden = false;
    // an unknown song still names its closest genre (by its display name)
    const shown = result.name || genreName(result.label);
    $("top-label").textContent = shownGenres(result, shown);
    $("top-score").textContent = pct(result.probabilities[result.label]);
    const facts = $("facts");
    facts.replaceChildren();
    const rows = [["File", result.filename], ["Length", seconds(result.duration)],
                  ["Model", result.model], ["Analysed in", result.elapsed.toFixed(2) + " s"]];
    // share of the model's training songs lying nearer to its genres than this song (0 to 1)
    if (typeof result.unknown_score === "number") rows.push(["Unknown score", result.unknown_score.toFixed(2)]);
    for (const note of result.notes || []) rows.push(["Note", note]);
    for (const [k, v] of rows) {
      facts.append(el("dt", {}, k), el("dd", { title: v }, v));
    }
    drawBars(result);
    drawTags(result);
    drawSimilar(result);
    drawTimeline(result);
    drawSpectrogram(result);
  }

  // Descriptive tags of the pretrained backbone (absent for other models): chips with scores.
  function drawTags(result) {
    const card = $("tags-card");
    const list = $("tags");
    list.replaceChildren();
    const tags = result.tags || [];
    card.hidden = tags.length === 0;
    for (const t of tags) {
      const chip = el("li", { class: "tag", "data-label": t.label, title: t.label + ": " + pct(t.score) });
      chip.append(el("span", { class: "tag-name" }, t.label), el("span", { class: "tag-score" }, pct(t.score)));
      list.append(chip);
    }
  }

  // "Similar in your library": only when the server was given --library.
  function drawSimilar(result) {
    const card = $("similar-card");
    const list = $("similar");
    list.replaceChildren();
    const songs = result.similar || [];
    card.hidden = songs.length === 0;
    for (const s of songs) {
      const item = el("li", { class: "similar-song", "data-path": s.path });
      item.append(el("span", { class: "similar-path", title: s.path }, s.path),
                  el("span", { class: "similar-meta" }, genreName(s.label) + " · " + s.score.toFixed(2)));
      list.append(item);
    }
  }

  // The API lists probabilities by score, highest first (ties by name): its order is the ranking.
  function ranking(result) {
    return Object.entries(result.probabilities).map(([label, score]) => ({ label, score }));
  }

  function drawBars(result) {
    const list = $("bars");
    list.replaceChildren();
    ranking(result).forEach((item, i) => {
      const li = el("li", { class: "bar" + (i === 0 ? " top" : ""), "data-label": item.label,
                            "data-value": (100 * item.score).toFixed(4) });
      const name = el("span", { class: "bar-name" }, genreName(item.label));
      const track = el("span", { class: "bar-track", "aria-hidden": "true" });
      const fill = el("span", { class: "bar-fill" });
      fill.style.width = Math.max(0, Math.min(100, 100 * item.score)).toFixed(2) + "%";
      fill.style.background = colour(item.label);
      track.append(fill);
      const value = el("span", { class: "bar-value" }, pct(item.score));
      li.append(name, track, value);
      list.append(li);
    });
  }

  function segments(result) {
    // Each window owns the stretch of time nearest its centre, so overlapping windows tile the song.
    const w = result.timeline.slice().sort((a, b) => a.start - b.start);
    const centres = w.map((x) => (x.start + x.end) / 2);
    return w.map((x, i) => ({
      from: i === 0 ? 0 : (centres[i - 1] + centres[i]) / 2,
      to: i === w.length - 1 ? Math.max(result.duration, x.end) : (centres[i] + centres[i + 1]) / 2,
      window: x,
    }));
  }

  function describeTimeline(result, segs) {
    const runs = [];
    for (const s of segs) {
      const p = s.window.probabilities;
      const top = Object.keys(p).reduce((a, b) => (p[b] > p[a] ? b : a));
      const last = runs[runs.length - 1];
      if (last && last.label === top) last.to = s.to;
      else runs.push({ label: top, from: s.from, to: s.to });
    }
    return "Genre probabilities along the song, " + segs.length + " window" + (segs.length === 1 ? "" : "s") +
      ": " + runs.map((r) => genreName(r.label) + " from " + r.from.toFixed(0) + " to " + r.to.toFixed(0) + " s").join("; ") + ".";
  }

  function drawTimeline(result) {
    const box = $("timeline");
    box.replaceChildren();
    const segs = segments(result);
    const order = ranking(result).map((r) => r.label); // most likely at the bottom of each stack
    const W = Math.max(260, Math.round(box.clientWidth || 480));
    const H = 210;
    const m = { left: 38, right: 8, top: 8, bottom: 26 };
    const pw = W - m.left - m.right;
    const ph = H - m.top - m.bottom;
    const end = Math.max(result.duration, segs.length ? segs[segs.length - 1].to : 0) || 1;
    const x = (t) => m.left + (pw * t) / end;
    const y = (p) => m.top + ph * (1 - p);

    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
                              "aria-label": describeTimeline(result, segs) });
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(svg("line", { class: "grid-line", x1: m.left, x2: W - m.right, y1: y(p), y2: y(p) }));
      root.append(svg("text", { x: m.left - 6, y: y(p) + 4, "text-anchor": "end" }, Math.round(p * 100) + "%"));
    }
    for (const s of segs) {
      const g = svg("g", { class: "window" });
      g.append(svg("title", {}, s.window.start.toFixed(1) + "–" + s.window.end.toFixed(1) + " s: " +
        order.slice().sort((a, b) => s.window.probabilities[b] - s.window.probabilities[a]).slice(0, 3)
          .map((l) => l + " " + pct(s.window.probabilities[l])).join(", ")));
      let acc = 0;
      for (const label of order) {
        const p = s.window.probabilities[label] || 0;
        if (p <= 0) continue;
        g.append(svg("rect", { class: "seg", x: x(s.from).toFixed(2), width: Math.max(0.5, x(s.to) - x(s.from)).toFixed(2),
                               y: y(acc + p).toFixed(2), height: (ph * p).toFixed(2), fill: colour(label),
                               "data-label": label }));
        acc += p;
      }
      root.append(g);
    }
    root.append(svg("line", { class: "axis-line", x1: m.left, x2: W - m.right, y1: y(0), y2: y(0) }));
    const step = niceStep(end, Math.max(2, Math.floor(pw / 70)));
    for (let t = 0; t <= end + 1e-6; t += step) {
      const anchor = t === 0 ? "start" : (x(t) > W - m.right - 20 ? "end" : "middle");
      root.append(svg("text", { x: x(t), y: H - 8, "text-anchor": anchor }, timeTick(t, step)));
    }
    box.append(root);

    const info = page.models[result.model];
    // The timeline's own windows (backbone models draw it finer than their analysis windows).
    const tl = result.timeline;
    const width = tl.length ? +(tl[0].end - tl[0].start).toFixed(1) : 0;
    const every = tl.length > 1 ? +(tl[1].start - tl[0].start).toFixed(1) : 0;
    const span = every ? "windows of " + width + " s, one every " + every + " s" : "windows";
    $("timeline-note").textContent = segs.length === 1
      ? "The song fits in one analysis window" + (info && info.window ? " (" + info.window + " s)" : "") +
        "; longer songs show how the genres change."
      : segs.length + " " + span + "; time in " + (step < 60 && end < 600 ? "seconds" : "minutes") + ".";

    const legend = $("legend");
    legend.replaceChildren();
    for (const label of order) {
      const sw = el("span", { class: "swatch", "aria-hidden": "true" });
      sw.style.background = colour(label);
      const li = el("li");
      li.append(sw, document.createTextNode(genreName(label)));
      legend.append(li);
    }
  }

  function drawSpectrogram(result) {
    const spec = result.spectrogram;
    const img = $("spec-img");
    const yAxis = $("spec-y");
    const xAxis = $("spec-x");
    yAxis.replaceChildren();
    xAxis.replaceChildren();
    if (!spec) return;
    img.width = spec.width;
    img.height = spec.height;
    img.alt = "Mel-spectrogram of " + result.filename + ": time from 0 to " + spec.duration.toFixed(1) +
      " s across, frequency from " + Math.round(spec.fmin) + " to " + Math.round(spec.fmax) +
      " Hz upwards on a mel scale; brighter colours are louder.";
    img.src = spec.url;
    // Frequency ticks from the top down, skipping any closer than 16 px to the last one kept.
    const h = img.clientHeight || 240;
    let lastPx = Infinity;
    for (const t of spec.freq_ticks.slice().sort((a, b) => b.position - a.position)) {
      const px = t.position * h;
      if (lastPx - px < 16) continue;
      lastPx = px;
      const s = el("span", {}, hzLabel(t.hz));
      s.style.bottom = (100 * t.position).toFixed(3) + "%";
      yAxis.append(s);
    }
    const width = xAxis.clientWidth || 600;
    const step = niceStep(spec.duration, Math.max(2, Math.floor(width / 64)));
    const ticks = [];
    for (let t = 0; t <= spec.duration + 1e-6; t += step) ticks.push(t);
    ticks.forEach((t, i) => {
      const s = el("span", {}, timeTick(t, step) + (i === ticks.length - 1 && step < 60 ? " s" : ""));
      const pos = (100 * t) / spec.duration;
      s.style.left = pos.toFixed(3) + "%";
      if (i === 0) s.classList.add("first");
      else if (pos > 96) s.classList.add("last");
      xAxis.append(s);
    });
    $("spec-caption").textContent = "Time (" + (step < 60 ? "s" : "min:s") + ") left to right; frequency (Hz, mel scale) " +
      "bottom to top; brighter is louder (" + Math.round(spec.db_max - spec.db_min) + " dB range).";
  }

  // --- wiring ---------------------------------------------------------------------------------
  function wire() {
    const input = $("file");
    const drop = $("drop");
    // Space opens a focused file input in every browser; Enter does not in all of them.
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !page.busy) {
        e.preventDefault();
        input.click();
      }
    });
    input.addEventListener("change", () => {
      if (input.files && input.files[0]) analyse(input.files[0]);
      input.value = ""; // choosing the same file again analyses it again
    });
    let depth = 0;
    drop.addEventListener("dragenter", (e) => {
      e.preventDefault();
      depth += 1;
      drop.classList.add("dragging");
    });
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = page.busy ? "none" : "copy";
    });
    drop.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) drop.classList.remove("dragging");
    });
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      depth = 0;
      drop.classList.remove("dragging");
      const files = e.dataTransfer && e.dataTransfer.files;
      if (files && files.length) analyse(files[0]);
    });
    // A file dropped next to the zone must not make the browser leave the page.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());

    let timer = null;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (page.last) {
          drawTimeline(page.last);
          drawSpectrogram(page.last);
        }
      }, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    init();
  });
})();
