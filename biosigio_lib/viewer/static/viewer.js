// biosigio viewer: plain JS + one canvas, no build step. See docs/viewer.md.
// Data: /api/meta (JSON) and /api/tile (raw int16/float32 columns of one view level).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const canvas = $("plot"), ctx = canvas.getContext("2d", { alpha: false });  // opaque: cheaper frames
  const LEFT = 130, TOP = 18, BOTTOM = 22, RIGHT = 6;
  const S = {
    stores: [], store: null, meta: null, g: null, gi: 0, sel: [], page: 0, pageSize: 32,
    t0: 0, span: 30, tile: 256, cache: new Map(), inflight: new Map(), gen: 0,
    complete: false, waiters: [], startMs: null, gain: 1,
    stats: { requests: 0, bytes: 0, draws: 0, completeDraws: 0, last: null, marks: { script: performance.now() } },
  };

  // ---------------------------------------------------------------- data
  async function getJSON(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(await r.text());
    return r.json();
  }

  function rowsKey(rows) {
    const contiguous = rows.every((r, i) => i === 0 || r === rows[i - 1] + 1);
    return contiguous ? rows[0] + "-" + rows[rows.length - 1] : rows.join(",");
  }

  function decode(buf, level, rows) {
    const g = S.g, n = buf.byteLength / (g.dtype === "int16" ? 2 : 4) / rows.length / (level ? 2 : 1);
    const raw = g.dtype === "int16" ? new Int16Array(buf) : new Float32Array(buf);
    const out = new Float32Array(raw.length), nan = g.nan_code;
    for (let b = 0; b < (level ? 2 : 1); b++) {
      for (let r = 0; r < rows.length; r++) {
        const s = g.scale[rows[r]], o = g.offset[rows[r]], base = (b * rows.length + r) * n;
        for (let i = base; i < base + n; i++) {
          const v = raw[i];
          out[i] = (nan !== null && v === nan) ? NaN : v * s + o;
        }
      }
    }
    const per = rows.length * n;
    return { n, min: out.subarray(0, per), max: level ? out.subarray(per, 2 * per) : out.subarray(0, per), bytes: buf.byteLength };
  }

  // one request per run of consecutive missing tiles (/api/tiles: the tiles' bodies back to
  // back); each tile is cached on its own, so later views reuse any of them
  function fetchTiles(run, level, rows) {
    const g = S.g, rk = rowsKey(rows), k0 = run[0].k, k1 = run[run.length - 1].k;
    const url = "api/tiles?store=" + encodeURIComponent(S.store) + "&group=" + encodeURIComponent(g.name) +
      "&level=" + level + "&tiles=" + k0 + "-" + k1 + "&rows=" + rk;
    S.stats.requests++;
    const per = (g.dtype === "int16" ? 2 : 4) * rows.length * (level ? 2 : 1);
    const p = fetch(url).then((r) => {
      if (!r.ok) throw new Error("tiles " + url + ": " + r.status);
      return r.arrayBuffer();
    }).then((buf) => {
      S.stats.marks.tiles = performance.now();
      S.stats.bytes += buf.byteLength;
      let off = 0;
      for (const t of run) {
        const n = Math.min(S.tile, g.lengths[level] - t.k * S.tile) * per;
        S.cache.set(t.key, decode(buf.slice(off, off + n), level, rows));
        off += n;
        if (S.cache.size > 3000) S.cache.delete(S.cache.keys().next().value);  // oldest first
      }
    }).finally(() => { for (const t of run) S.inflight.delete(t.key); });
    for (const t of run) S.inflight.set(t.key, p);
    return p;
  }

  // ---------------------------------------------------------------- view geometry
  function plotW() { return Math.max(10, canvas.clientWidth - LEFT - RIGHT); }
  function pageRows() { return S.sel.slice(S.page * S.pageSize, (S.page + 1) * S.pageSize); }
  function tStart() { return S.g.t0; }
  function tEnd() { return S.g.t0 + S.g.n_samples / S.g.rate; }

  function pickLevel() {  // the coarsest level with at least half a column per pixel
    const g = S.g, px = plotW();
    let L = 0;
    while (L + 1 < g.lengths.length && S.span * g.rate / Math.pow(g.downsample, L + 1) >= px / 2) L++;
    return L;
  }

  function plan() {
    const g = S.g, L = pickLevel(), f = Math.pow(g.downsample, L), n = g.lengths[L];
    const j0 = Math.max(0, Math.floor((S.t0 - g.t0) * g.rate / f));
    const j1 = Math.min(n, Math.ceil((S.t0 + S.span - g.t0) * g.rate / f));
    const rows = pageRows(), rk = rowsKey(rows), tiles = [];
    if (j1 > j0 && rows.length) {
      for (let k = Math.floor(j0 / S.tile); k <= Math.floor((j1 - 1) / S.tile); k++) {
        tiles.push({ k, key: S.store + "|" + g.name + "|" + L + "|" + k + "|" + rk });
      }
    }
    return { L, f, j0, j1, rows, tiles };
  }

  function clampView() {
    const d = tEnd() - tStart();
    S.span = Math.min(Math.max(S.span, 8 / S.g.rate), Math.max(d * 1.02, 8 / S.g.rate));
    S.t0 = Math.min(Math.max(S.t0, tStart() - S.span * 0.5), tEnd() - S.span * 0.5);
  }

  // ---------------------------------------------------------------- render
  // the tiles boot.js asked for with the metadata: registered as in flight under their
  // keys, so the first plan waits for them instead of asking again (others: fetched)
  function adoptFirst(h) {
    if (!h || !S.g || h.group !== S.g.name) { if (h) h.body.catch(() => {}); return; }
    const g = S.g, [k0, k1] = h.tiles.split("-").map(Number), L = h.level;
    const rows = [], [r0, r1] = h.rows.split("-").map(Number);
    for (let r = r0; r <= r1; r++) rows.push(r);
    const per = (g.dtype === "int16" ? 2 : 4) * rows.length * (L ? 2 : 1), keys = [];
    for (let k = k0; k <= k1; k++) keys.push(S.store + "|" + g.name + "|" + L + "|" + k + "|" + h.rows);
    S.stats.requests++;
    const p = h.body.then((buf) => {
      S.stats.marks.tiles = performance.now();
      S.stats.bytes += buf.byteLength;
      let off = 0;
      for (let k = k0; k <= k1; k++) {
        const n = Math.min(S.tile, g.lengths[L] - k * S.tile) * per;
        S.cache.set(keys[k - k0], decode(buf.slice(off, off + n), L, rows));
        off += n;
      }
    }).finally(() => { for (const key of keys) S.inflight.delete(key); });
    p.catch(() => {});
    for (const key of keys) S.inflight.set(key, p);
  }

  function render() {
    if (!S.g) return;
    if (S.first) {  // the very first view: wait for the early tiles' headers (not body)
      const f = S.first; S.first = null;
      f.then(adoptFirst, () => {}).finally(render);
      return;
    }
    clampView();
    const p = plan(), gen = ++S.gen;
    S.complete = false;
    const missing = p.tiles.filter((t) => !S.cache.has(t.key));
    const t0 = performance.now();
    if (!missing.length) { draw(p, t0, 0); return; }
    const waits = [], run = [];
    const flush = () => { if (run.length) waits.push(fetchTiles(run.splice(0), p.L, p.rows)); };
    for (const t of missing) {  // requests first, then the partial draw
      if (S.inflight.has(t.key)) { flush(); waits.push(S.inflight.get(t.key)); continue; }
      if (run.length && (t.k !== run[run.length - 1].k + 1 || run.length >= 16)) flush();
      run.push(t);
    }
    flush();
    // what is cached now, the rest as it arrives (the very first view: no empty frame)
    if (S.stats.draws || missing.length < p.tiles.length) draw(p, t0, missing.length);
    else status("loading\u2026");
    Promise.all(waits).then(() => {
      if (gen === S.gen) draw(plan(), t0, 0);
    }).catch((e) => status("error: " + e.message));
  }

  function status(text) { $("status").textContent = text; }

  function fmtClock(t, step) {
    if (S.startMs === null) {
      return (step < 1 ? t.toFixed(3) : t.toFixed(0)) + " s";
    }
    const d = new Date(S.startMs + t * 1000);
    const pad = (v, w) => String(v).padStart(w || 2, "0");
    let s = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
    if (step < 1) s += "." + pad(d.getUTCMilliseconds(), 3);
    const day = Math.floor((S.startMs + t * 1000) / 86400000) - Math.floor(S.startMs / 86400000);
    return (day ? "+" + day + "d " : "") + s;
  }

  // ---------------------------------------------------------------- raster
  let _R = null;
  function raster(dw, dh, row) {  // the plot's ImageData (kept between draws), every pixel row
    if (!_R || _R.img.width !== dw || _R.img.height !== dh) {  // set to ``row`` (the background)
      const img = new ImageData(dw, dh);
      _R = { img, px: new Uint32Array(img.data.buffer), row,
        top: new Float32Array(dw), bot: new Float32Array(dw), mins: new Float32Array(0), maxs: new Float32Array(0) };
    }
    for (let y = 0, px = _R.px; y < dh; y++) px.set(row, y * dw);  // native row copies
    return _R;
  }

  // opaque ABGR pixel of colour (r, g, b) at alpha a over the ABGR pixel under it
  function blend(under, r, g, b, a) {
    const ur = under & 255, ug = (under >>> 8) & 255, ub = (under >>> 16) & 255;
    return (0xff000000 | (Math.round(b * a + ub * (1 - a)) << 16) |
      (Math.round(g * a + ug * (1 - a)) << 8) | Math.round(r * a + ur * (1 - a))) >>> 0;
  }

  function span(top, bot, dw, xa, xb, ya, yb) {  // the pixels a segment crosses, per column
    const Xa = Math.floor(xa), Xb = Math.floor(xb), dx = xb - xa;
    for (let X = Math.max(Xa, 0); X <= Xb && X < dw; X++) {
      let y0 = ya, y1 = yb;
      if (dx > 0) {
        const l = Math.max(xa, X), rr = Math.min(xb, X + 1);
        y0 = ya + (yb - ya) * (l - xa) / dx; y1 = ya + (yb - ya) * (rr - xa) / dx;
      }
      const t = Math.min(y0, y1), b = Math.max(y0, y1);
      if (t < top[X]) top[X] = t;
      if (b > bot[X]) bot[X] = b;
    }
  }

  function draw(p, tReq, missing) {
    S.stats.marks.draw = performance.now();
    const g = S.g, dpr = window.devicePixelRatio || 1;
    const W = canvas.clientWidth, H = canvas.clientHeight;
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const pw = plotW(), ph = H - TOP - BOTTOM, nr = Math.max(1, p.rows.length), band = ph / nr;
    const x = (t) => LEFT + (t - S.t0) / S.span * pw;
    const M = S.stats.marks;
    // traces: rasterised into one ImageData (device pixels, no anti-aliasing) over the
    // events' background and put with a single putImageData: stroking ~50k thick segments
    // costs the canvas 0.5-3 s/frame, a blend of a transparent layer tens of ms
    const colT = p.f / g.rate, m = p.j1 - p.j0, used = [];
    let usedBytes = 0;
    for (const t of p.tiles) { const c = S.cache.get(t.key); used.push(c ? { k: t.k, c } : null); if (c) usedBytes += c.bytes; }
    const dw = Math.max(1, Math.round(pw * dpr)), dh = Math.max(1, Math.round(ph * dpr));
    const row = _R && _R.row.length === dw ? _R.row : new Uint32Array(dw);
    row.fill(0xffffffff);  // white, then the events' shading and markers
    drawEvents(x, row, dpr);
    M.events = performance.now();
    const R = raster(dw, dh, row);
    const mins = R.mins.length >= m ? R.mins : (R.mins = new Float32Array(m));
    const maxs = R.maxs.length >= m ? R.maxs : (R.maxs = new Float32Array(m));
    const top = R.top, bot = R.bot, px = R.px;
    const lineMode = p.L === 0 && m <= pw * 2;
    const xs = dw * colT / S.span, x0 = dw * (g.t0 + p.j0 * colT - S.t0) / S.span;  // column i starts at x0 + i*xs
    for (let r = 0; r < p.rows.length; r++) {
      mins.fill(NaN, 0, m); maxs.fill(NaN, 0, m);
      let lo = Infinity, hi = -Infinity;
      for (const u of used) {
        if (!u) continue;
        const a = Math.max(p.j0, u.k * S.tile), b = Math.min(p.j1, u.k * S.tile + u.c.n);
        const off = r * u.c.n - u.k * S.tile, mn = u.c.min, mx = u.c.max;
        for (let j = a; j < b; j++) {
          const vn = mn[off + j], vx = mx[off + j];
          mins[j - p.j0] = vn; maxs[j - p.j0] = vx;
          if (vn < lo) lo = vn;
          if (vx > hi) hi = vx;
        }
      }
      const yc = dpr * band * (r + 0.5), mid = (lo + hi) / 2;
      const k = dpr * band * 0.45 / (Math.max((hi - lo) / 2, 1e-12) / S.gain);
      top.fill(1e9); bot.fill(-1e9);
      if (lineMode) {  // samples: a polyline through the column centres (gaps at NaN)
        let pxa = NaN, pya = NaN;
        for (let i = 0; i < m; i++) {
          const v = mins[i];
          if (v !== v) { pxa = NaN; continue; }
          const xb = x0 + i * xs, yb = yc - (v - mid) * k;
          if (pxa !== pxa) { span(top, bot, dw, xb, xb, yb, yb); } else { span(top, bot, dw, pxa, xb, pya, yb); }
          pxa = xb; pya = yb;
        }
      } else {  // min/max envelope: each column's range over its pixels
        for (let i = 0; i < m; i++) {
          const vn = mins[i];
          if (vn !== vn) continue;
          const ya = yc - (maxs[i] - mid) * k, yb = yc - (vn - mid) * k;
          const xa = x0 + i * xs;
          let X = Math.floor(xa);
          const X1 = Math.max(X + 1, Math.floor(xa + xs));
          for (X = Math.max(X, 0); X < X1 && X < dw; X++) {
            if (ya < top[X]) top[X] = ya;
            if (yb > bot[X]) bot[X] = yb;
          }
        }
        // join each pixel column to its neighbour so the envelope has no gaps
        let pt = NaN, pb = NaN;
        for (let X = 0; X < dw; X++) {
          const t = top[X], b = bot[X];
          if (t > b) { pt = pb = NaN; continue; }
          if (pt === pt) { if (pb < t) top[X] = pb; if (pt > b) bot[X] = pt; }
          pt = t; pb = b;
        }
      }
      const color = r % 2 ? 0xff8c4e1f : 0xff403020;  // #1f4e8c, #203040 (ABGR)
      for (let X = 0; X < dw; X++) {
        const t = top[X], b = bot[X];
        if (t > b) continue;
        const ya = Math.max(0, Math.round(t)), yb = Math.min(dh - 1, Math.max(Math.round(b), Math.round(t)));
        for (let y = ya, i = ya * dw + X; y <= yb; y++, i += dw) px[i] = color;
      }
    }
    M.raster = performance.now();
    ctx.putImageData(R.img, Math.round(LEFT * dpr), Math.round(TOP * dpr));  // opaque: no blending
    M.image = performance.now();
    // channel names and units
    ctx.fillStyle = "#222"; ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    for (let r = 0; r < p.rows.length; r++) {
      const ch = g.channels[p.rows[r]];
      const label = ch.label + (ch.unit ? " [" + ch.unit + "]" : "");
      ctx.fillText(label.length > 20 ? label.slice(0, 19) + "\u2026" : label, 4, TOP + band * (r + 0.5));
    }
    ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1; ctx.strokeRect(LEFT + 0.5, TOP + 0.5, pw, ph);
    drawAxis(x, pw, H);
    M.text = performance.now();
    S.stats.draws++;
    if (!missing) {
      S.complete = true;
      S.stats.completeDraws++;
      const bpv = (g.dtype === "int16" ? 2 : 4) * (p.L ? 2 : 1);
      S.stats.last = { ms: performance.now() - tReq, at: performance.now(), level: p.L, columns: m,
        rows: p.rows.length, tiles: p.tiles.length, usedBytes, neededBytes: m * p.rows.length * bpv,
        pixelBytes: Math.ceil(pw) * p.rows.length * bpv };
      const w = S.waiters; S.waiters = [];
      w.forEach((f) => f(S.stats.last));
      history.replaceState(null, "", "#store=" + encodeURIComponent(S.store) + "&group=" +
        encodeURIComponent(g.name) + "&t=" + S.t0.toFixed(3) + "&w=" + S.span.toPrecision(6));
    }
    // the event menu: well after the frame that shows this draw
    if (!missing && !S.eventsListed) {
      const store = S.store;
      setTimeout(() => { if (S.store === store && !S.eventsListed) { S.eventsListed = true; listEvents(); } }, 500);
    }
    const pages = Math.max(1, Math.ceil(S.sel.length / S.pageSize));
    $("pglabel").textContent = "ch " + (S.sel.length ? S.page * S.pageSize + 1 : 0) + "\u2013" +
      Math.min(S.sel.length, (S.page + 1) * S.pageSize) + " of " + S.sel.length + " (page " + (S.page + 1) + "/" + pages + ")";
    status(fmtClock(S.t0, S.span < 10 ? 0.5 : 1) + " + " + fmtSpan(S.span) + "  level " + p.L +
      (missing ? "  loading\u2026" : ""));
  }

  // the "jump to event" menu (up to 5000 options): filled in short idle-time steps once the
  // first view is on screen (its options cost style and layout), or at once when used
  let _listing = null;
  function listEvents() {
    const ev = $("events"), E = S.meta.events, n = Math.min(E.onset.length, 5000), store = S.store;
    ev.length = 1;
    let i = 0;
    const idle = window.requestIdleCallback || ((f) => setTimeout(() => f({ timeRemaining: () => 8 }), 0));
    const step = (deadline, all) => {
      if (S.store !== store || _listing !== step) return;  // another store opened meanwhile
      const frag = document.createDocumentFragment();
      const stop = all ? Infinity : performance.now() + Math.min(8, deadline.timeRemaining());
      do {
        for (const end = Math.min(n, i + 100); i < end; i++) {
          const o = document.createElement("option"); o.value = i;
          o.textContent = fmtClock(E.onset[i], 1) + "  " + E.description[i]; frag.appendChild(o);
        }
      } while (i < n && performance.now() < stop);
      ev.appendChild(frag);
      if (i < n) idle(step, { timeout: 1000 }); else _listing = null;
    };
    _listing = step;
    idle(step, { timeout: 1000 });
  }
  function listEventsNow() {  // the menu is being opened: the rest of its options at once
    if (!S.meta) return;
    if (!S.eventsListed) { S.eventsListed = true; listEvents(); }
    if (_listing) _listing(null, true);
  }

  function fmtSpan(s) {
    if (s >= 3600) return (s / 3600).toPrecision(3) + " h";
    if (s >= 60) return (s / 60).toPrecision(3) + " min";
    return s.toPrecision(3) + " s";
  }

  // events: shaded durations and onset markers go into ``row`` (one pixel row of the plot's
  // background, device pixels; every row of the plot starts as a copy of it, under the
  // traces), the texts onto the canvas. Touching/overlapping durations are one shaded span
  // (a hypnogram is one, not thousands); markers: at most one per pixel column.
  function drawEvents(x, row, dpr) {
    const ev = S.meta.events, n = ev.onset.length, dw = row.length;
    if (!n) return;
    const tA = S.t0, tB = S.t0 + S.span;
    let i = lowerBound(ev.onset, tA - maxDur());
    let lastText = -1e9, count = 0, lastMark = -1, sa = NaN, sb = NaN;
    const right = LEFT + plotW(), marks = [];
    const X = (v) => Math.min(dw, Math.max(0, Math.round((v - LEFT) * dpr)));
    ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "alphabetic";
    ctx.fillStyle = "rgba(200,40,40,0.85)";
    const shade = () => {
      if (sa === sa && sb > sa) {
        const a = X(sa), b = Math.max(X(sb), a + 1), c = blend(row[Math.min(a, dw - 1)], 230, 140, 20, 0.07);
        row.fill(c, a, b);
      }
    };
    for (; i < n && ev.onset[i] < tB; i++) {
      const on = ev.onset[i], du = ev.duration[i];
      if (on + du < tA) continue;
      const xa = x(on);
      if (du > 0) {
        const a = Math.max(LEFT, xa), b = Math.min(x(on + du), right);
        if (sa === sa && a <= sb + 0.5) sb = Math.max(sb, b); else { shade(); sa = a; sb = b; }
      }
      const xr = Math.round(xa);
      if (xa >= LEFT && xa <= right && xr !== lastMark) {
        marks.push(xr);
        lastMark = xr;
        if (xa - lastText > 60 && count < 400) {
          ctx.fillText(ev.description[i].slice(0, 24), xa + 2, TOP - 4);
          lastText = xa; count++;
        }
      }
    }
    shade();
    const w = Math.max(1, Math.round(dpr));  // markers over the shading: 1 CSS pixel wide
    for (const xr of marks) {
      const a = X(xr);
      for (let k = a; k < Math.min(dw, a + w); k++) row[k] = blend(row[k], 200, 40, 40, 0.85);
    }
  }

  let _maxDur = null;
  function maxDur() {
    if (_maxDur === null) _maxDur = S.meta.events.duration.reduce((a, b) => Math.max(a, b), 0);
    return _maxDur;
  }

  function lowerBound(a, v) {
    let lo = 0, hi = a.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < v) lo = mid + 1; else hi = mid; }
    return lo;
  }

  const STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120,
    300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function drawAxis(x, pw, H) {
    const want = S.span / (pw / 90);
    const step = STEPS.find((s) => s >= want) || 86400;
    const base = S.startMs === null ? 0 : (S.startMs / 1000) % step;
    let t = Math.ceil((S.t0 + base) / step) * step - base;
    ctx.fillStyle = "#444"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "top";
    ctx.strokeStyle = "#ddd";
    for (; t <= S.t0 + S.span; t += step) {
      const xi = x(t);
      ctx.fillRect(Math.round(xi), H - BOTTOM, 1, 4);
      ctx.fillText(fmtClock(t, step), xi + 2, H - BOTTOM + 5);
    }
  }

  // ---------------------------------------------------------------- loading
  async function loadStores() {
    // load the fonts while the metadata and first tiles are on their way (a renderer's first
    // text costs tens of ms: better now than in the first draw)
    for (const f of ["11px system-ui, sans-serif", "12px system-ui, sans-serif"]) { ctx.font = f; ctx.measureText("Wg0"); }
    const h0 = hashParams(), pre = window.BIOSIGIO_STORES;  // embedded by the server
    // the metadata request the page's head already made (before this script was parsed)
    if (window.BIOSIGIO_META && !S.metaPromise) S.metaPromise = window.BIOSIGIO_META;
    window.BIOSIGIO_META = null;
    if (h0.store !== undefined && !S.metaPromise) S.metaPromise = { id: h0.store, p: getJSON("api/meta?store=" + encodeURIComponent(h0.store)) };
    const r = pre || await getJSON("api/stores");
    S.stats.marks.stores = performance.now();
    S.stores = r.stores;
    const sel = $("store");
    sel.innerHTML = "";
    for (const s of S.stores) { const o = document.createElement("option"); o.value = s; o.textContent = s || r.target; sel.appendChild(o); }
    if (!S.stores.length) { status("no biosigio stores under " + r.target); return; }
    const h = hashParams();
    await openStore(h.store !== undefined && S.stores.includes(h.store) ? h.store : S.stores[0], h);
  }

  function hashParams() {
    const out = {};
    for (const kv of location.hash.replace(/^#/, "").split("&")) {
      if (!kv) continue;
      const i = kv.indexOf("=");
      out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    }
    return out;
  }

  async function openStore(id, h) {
    S.store = id; $("store").value = id; _maxDur = null; S.complete = false; S.gen++;
    const mp = S.metaPromise && S.metaPromise.id === id ? S.metaPromise.p : null;
    S.metaPromise = null;
    const first = window.BIOSIGIO_FIRST;
    window.BIOSIGIO_FIRST = null;
    S.first = first && first.id === id ? first.p : null;
    S.meta = await (mp || getJSON("api/meta?store=" + encodeURIComponent(id)));
    S.tile = S.meta.tile;
    S.stats.marks.meta = performance.now();
    const st = S.meta.start_time;
    S.startMs = st ? Date.parse(String(st).replace(/(\.\d{3})\d+/, "$1").replace(/([+-]\d\d:\d\d|Z)$/, "") + "Z") : null;
    if (S.startMs !== null && isNaN(S.startMs)) S.startMs = null;
    const gs = $("group"); gs.innerHTML = "";
    S.meta.groups.forEach((g, i) => { const o = document.createElement("option"); o.value = i; o.textContent = g.name + " (" + g.channels.length + " ch)"; gs.appendChild(o); });
    $("events").length = 1;
    S.eventsListed = false;  // the event menu is filled after the first complete draw
    if (!S.meta.groups.length) {
      S.g = null; S.complete = true; status("events-only store: nothing to draw"); S.eventsListed = true; listEvents();
      const w = S.waiters; S.waiters = []; w.forEach((f) => f(null)); return;
    }
    let gi = S.meta.groups.findIndex((g) => g.name === (h && h.group));
    openGroup(gi < 0 ? 0 : gi, h);
  }

  function openGroup(i, h) {
    S.gi = i; S.g = S.meta.groups[i]; $("group").value = i;
    S.sel = S.g.channels.map((_, k) => k); S.page = 0; $("chfilter").value = "";
    const dur = S.g.n_samples / S.g.rate;
    S.span = h && h.w ? +h.w : Math.min(30, dur);
    S.t0 = h && h.t ? +h.t : S.g.t0;
    render();
  }

  function applyFilter(text) {
    const ch = S.g.channels.map((c) => c.label);
    let sel;
    text = text.trim();
    if (!text) sel = ch.map((_, k) => k);
    else if (/^\/.*\/$/.test(text)) {
      const re = new RegExp(text.slice(1, -1), "i");
      sel = ch.map((l, k) => (re.test(l) ? k : -1)).filter((k) => k >= 0);
    } else {
      const toks = text.split(/[\s,]+/).filter(Boolean).map((t) => t.toLowerCase());
      sel = ch.map((l, k) => (toks.includes(l.toLowerCase()) ? k : -1)).filter((k) => k >= 0);
      if (!sel.length) sel = ch.map((l, k) => (toks.some((t) => l.toLowerCase().includes(t)) ? k : -1)).filter((k) => k >= 0);
    }
    S.sel = sel; S.page = 0; render();
  }

  // ---------------------------------------------------------------- interaction
  function pan(frac) { S.t0 += frac * S.span; render(); }
  function zoom(factor, at) {  // at: fraction of the plot width kept in place
    const tc = S.t0 + (at === undefined ? 0.5 : at) * S.span;
    const old = S.span;
    S.span = S.span * factor; clampView();
    S.t0 = tc - (tc - S.t0) * S.span / old;
    render();
  }
  function setPage(p) {
    const pages = Math.max(1, Math.ceil(S.sel.length / S.pageSize));
    S.page = Math.min(Math.max(0, p), pages - 1); render();
  }
  function jumpToEvent(i) {
    const E = S.meta.events;
    if (i < 0 || i >= E.onset.length) return;
    S.t0 = E.onset[i] - S.span * 0.25; render();
  }
  function nextEvent(dir) {
    const E = S.meta.events, mark = S.t0 + S.span * 0.25;
    let i = lowerBound(E.onset, mark + (dir > 0 ? 1e-6 : -1e-6));
    if (dir < 0) i -= 1;
    jumpToEvent(i);
  }

  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    canvas.focus(); drag = { x: e.clientX, t0: S.t0 }; canvas.setPointerCapture(e.pointerId); canvas.classList.add("drag");
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    S.t0 = drag.t0 - (e.clientX - drag.x) / plotW() * S.span; render();
  });
  const endDrag = () => { drag = null; canvas.classList.remove("drag"); };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (e.shiftKey) { pan(Math.sign(e.deltaY || e.deltaX) * 0.1); return; }
    const at = Math.min(1, Math.max(0, (e.offsetX - LEFT) / plotW()));
    zoom(Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002))), at);
  }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    const k = e.key;
    if (k === "ArrowRight") pan(e.shiftKey ? 1 : 0.25);
    else if (k === "ArrowLeft") pan(e.shiftKey ? -1 : -0.25);
    else if (k === "+" || k === "=") zoom(0.5);
    else if (k === "-" || k === "_") zoom(2);
    else if (k === "PageDown" || k === "ArrowDown") setPage(S.page + 1);
    else if (k === "PageUp" || k === "ArrowUp") setPage(S.page - 1);
    else if (k === "Home") { S.t0 = tStart(); render(); }
    else if (k === "End") { S.t0 = tEnd() - S.span; render(); }
    else if (k === "n") nextEvent(1);
    else if (k === "p") nextEvent(-1);
    else if (k === "*") { S.gain *= 1.5; render(); }
    else if (k === "/") { S.gain /= 1.5; render(); }
    else return;
    e.preventDefault();
  });
  $("store").addEventListener("change", (e) => openStore(e.target.value, {}));
  $("group").addEventListener("change", (e) => openGroup(+e.target.value, {}));
  $("chfilter").addEventListener("change", (e) => applyFilter(e.target.value));
  $("pgprev").addEventListener("click", () => setPage(S.page - 1));
  $("pgnext").addEventListener("click", () => setPage(S.page + 1));
  $("pgsize").addEventListener("change", (e) => { S.pageSize = +e.target.value; S.page = 0; render(); });
  $("zin").addEventListener("click", () => zoom(0.5));
  $("zout").addEventListener("click", () => zoom(2));
  for (const type of ["pointerdown", "focus", "keydown"]) $("events").addEventListener(type, listEventsNow);
  $("events").addEventListener("change", (e) => { if (e.target.value !== "") jumpToEvent(+e.target.value); canvas.focus(); });
  window.addEventListener("resize", () => render());

  // for tests and benchmarks: the state, counters and a promise of the next complete draw
  window.viewer = {
    state: S, stats: S.stats, pan, zoom, setPage, jumpToEvent, applyFilter,
    setView(t0, span) { S.t0 = t0; S.span = span; render(); },
    idle() {
      if (S.complete && !S.inflight.size) return Promise.resolve(S.stats.last);
      return new Promise((res) => S.waiters.push(res));
    },
  };
  loadStores().catch((e) => status("error: " + e.message));
})();
