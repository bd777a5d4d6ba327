// biosigio viewer, first thing in the page's head: ask for the store's metadata at once,
// while the browser still parses the page and its script (viewer.js takes the promise).
"use strict";
(function () {
  const h = {};
  for (const kv of location.hash.replace(/^#/, "").split("&")) {
    const i = kv.indexOf("=");
    if (i > 0) h[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
  }
  const list = window.BIOSIGIO_STORES ? window.BIOSIGIO_STORES.stores : null;
  const id = h.store !== undefined && (!list || list.includes(h.store)) ? h.store : (list && list.length ? list[0] : undefined);
  if (id === undefined) return;
  const p = fetch("api/meta?store=" + encodeURIComponent(id)).then(async (r) => {
    if (!r.ok) throw new Error(await r.text());
    return r.json();
  });
  p.catch(() => {});  // reported where viewer.js awaits it
  window.BIOSIGIO_META = { id, p };
  // and, in parallel, the first view's tiles as the server plans them from the same
  // fragment and plot width (viewer.js uses them if its own plan asks for the same tiles)
  const px = Math.max(10, document.documentElement.clientWidth - 136);  // LEFT + RIGHT
  let q = "api/first?store=" + encodeURIComponent(id) + "&px=" + px + "&n=32";
  for (const k of ["group", "t", "w"]) if (h[k]) q += "&" + k + "=" + encodeURIComponent(h[k]);
  const f = fetch(q).then((r) => (r.ok && r.status === 200 ? {
    group: r.headers.get("X-Group"), level: +r.headers.get("X-Level"),
    tiles: r.headers.get("X-Tiles"), rows: r.headers.get("X-Rows"), body: r.arrayBuffer(),
  } : null)).catch(() => null);
  window.BIOSIGIO_FIRST = { id, p: f };
})();
