// The course's attention explorer: click a token and its attention arcs light up.
//
// Inlined by course_lib/explorer.py into every figure it writes. The first figure on a page
// defines window.CourseExplorer; later figures reuse it (same version) and only call
// CourseExplorer.init(id) for their own container, so any number of figures can share a
// page. Plain JavaScript and SVG: no library, nothing fetched.
//
// Data (a <script type="application/json" class="cx-data"> inside the container):
//   shape [L, H, Tq, Tk]; w: the uint8 weights (weight = byte / 255, row-major L, H, Tq, Tk),
//   zlib-compressed, then base85 (Python's b85 alphabet with '<' written as '.'); n: the
//   compressed byte count; tokens, qtokens (cross-attention, else null), layers, heads, special (bools over
//   tokens), title, topk.
// Comment-only lines and indentation are stripped when inlined: keep comments on own lines.
window.CourseExplorer = (window.CourseExplorer && window.CourseExplorer.version >= 1)
  ? window.CourseExplorer : (function () {
  "use strict";
  const ROW = 20;        // px per token row
  const ARC_W = 220;     // px between the two token columns
  const SVGNS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"];
  const B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" +
    "!#$%&()*+-;.=>?@^_`{|}~";

  // Head colours: the palette, then evenly spaced hues.
  function headColour(h) {
    return h < PALETTE.length ? PALETTE[h] : `hsl(${(h * 137.5) % 360}, 60%, 45%)`;
  }

  // Black or white text, whichever contrasts more with the background (WCAG luminance).
  function textOn(bg) {
    const probe = document.createElement("span");
    probe.style.color = bg;
    document.body.appendChild(probe);
    const rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    probe.remove();
    const lin = rgb.map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    const L = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    return (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? "#000" : "#fff";
  }

  function b85decode(s, n) {
    const pad = (5 - (s.length % 5)) % 5;
    s += "~".repeat(pad);
    const out = new Uint8Array((s.length / 5) * 4);
    for (let i = 0, o = 0; i < s.length; i += 5, o += 4) {
      let v = 0;
      for (let j = 0; j < 5; j++) v = v * 85 + B85.indexOf(s[i + j]);
      out[o] = v >>> 24; out[o + 1] = (v >>> 16) & 255; out[o + 2] = (v >>> 8) & 255; out[o + 3] = v & 255;
    }
    return out.subarray(0, n);
  }

  async function inflate(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // h("button", {class: "x", onclick: f}, child, ...): a DOM element.
  function h(tag, attrs, ...children) {
    const el = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4))
      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v);
    }
    for (const c of children) el.append(c);
    return el;
  }

  function escapeXml(s) {
    return s.replace(/[<>&"]/g, c => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "\"": "&quot;" })[c]);
  }

  // One figure: state, weights access, DOM and drawing.
  function Figure(root, d, bytes) {
    const [L, H, Tq, Tk] = d.shape;
    const cross = d.qtokens !== null;
    const qtok = cross ? d.qtokens : d.tokens, ktok = d.tokens;
    const kspecial = d.special, qspecial = cross ? qtok.map(() => false) : d.special;
    const hasSpecial = kspecial.some(Boolean);
    const colours = Array.from({ length: H }, (_, i) => headColour(i));
    const S = {
      layer: 0, cur: 0, all: false, on: colours.map((_, i) => i === 0), thr: 0,
      hide: false, dir: "to", lock: null, preview: null,
    };

    // Row sums over non-special keys, for "hide special tokens and renormalise".
    const kept = new Float64Array(L * H * Tq);
    for (let r = 0; r < L * H * Tq; r++) {
      let s = 0;
      for (let k = 0; k < Tk; k++) if (!kspecial[k]) s += bytes[r * Tk + k];
      kept[r] = s;
    }
    function W(l, hd, q, k) {
      const r = (l * H + hd) * Tq + q, b = bytes[r * Tk + k];
      if (!S.hide) return b / 255;
      if (kspecial[k] || qspecial[q] || kept[r] === 0) return 0;
      return b / kept[r];
    }
    const visible = (special, i) => !(S.hide && special[i]);

    // ---- controls -------------------------------------------------------------------------
    const uid = root.id;
    const status = h("p", { class: "cx-status", "aria-live": "polite" });
    const dirButtons = ["to", "by"].map(dir => h("button", {
      type: "button", class: "cx-toggle", "data-dir": dir,
      onclick: () => { setDir(dir); render(); },
    }, dir === "to" ? "attends to" : "attended by"));
    const allButton = h("button", {
      type: "button", class: "cx-toggle cx-all",
      onclick: () => { S.all = !S.all; if (!S.all) S.on = S.on.map((_, i) => i === S.cur); else S.on.fill(true); render(); },
    }, "all heads");
    const chips = colours.map((c, i) => h("button", {
      type: "button", class: "cx-chip", style: `--c:${c};--t:${textOn(c)}`,
      onclick: () => {
        S.cur = i;
        if (S.all) S.on[i] = !S.on[i]; else S.on = S.on.map((_, j) => j === i);
        render();
      },
    }, d.heads[i]));
    const layerSelect = h("select", { id: `${uid}-layer`, onchange: e => { S.layer = +e.target.value; render(); } },
      ...d.layers.map((name, i) => h("option", { value: i }, name)));
    const thrOut = h("output", { for: `${uid}-thr` }, "0.00");
    const thrInput = h("input", {
      type: "range", id: `${uid}-thr`, min: 0, max: 0.5, step: 0.01, value: 0,
      oninput: e => { S.thr = +e.target.value; thrOut.textContent = S.thr.toFixed(2); render(); },
    });
    const hideBox = h("input", {
      type: "checkbox", id: `${uid}-hide`,
      onchange: e => { S.hide = e.target.checked; drawThumbs(); render(); },
    });
    const link = h("a", { class: "cx-link", hidden: true, download: `attention-${uid}.svg` });
    const download = h("button", { type: "button", class: "cx-download", onclick: downloadSvg }, "download SVG");

    // ---- token columns and the arcs between them --------------------------------------------
    function tokenButtons(side, toks, special) {
      return toks.map((t, i) => h("button", {
        type: "button", class: "cx-token" + (special[i] ? " cx-special" : ""),
        "data-side": side, "data-i": i, "aria-pressed": "false",
        onclick: () => { S.lock = { side, i }; S.dir = side === "q" ? "to" : "by"; render(); },
        onmouseenter: () => { S.preview = { side, i }; render(); },
        onmouseleave: () => { S.preview = null; render(); },
        onfocus: () => { S.preview = { side, i }; render(); },
        onblur: () => { S.preview = null; render(); },
      }, t === "" ? "\u2423" : t));
    }
    const qButtons = tokenButtons("q", qtok, qspecial), kButtons = tokenButtons("k", ktok, kspecial);
    const arcs = h("svg:g", { class: "arcs" });
    const hint = h("svg:text", { class: "cx-hint", x: ARC_W / 2, y: 14, "text-anchor": "middle" },
      "hover or click a token");
    const svg = h("svg:svg", { class: "cx-svg", width: ARC_W, role: "img", "aria-label": "attention arcs" }, hint, arcs);
    const colHead = (text) => h("div", { class: "cx-colhead" }, text);

    // ---- layer x head thumbnails --------------------------------------------------------------
    const thumbs = [];
    const grid = h("div", { class: "cx-grid", style: `grid-template-columns: auto repeat(${H}, auto)` },
      h("span"), ...d.heads.map(n => h("span", { class: "cx-gridhead" }, n)));
    for (let l = 0; l < L; l++) {
      grid.append(h("span", { class: "cx-gridhead" }, d.layers[l]));
      for (let hd = 0; hd < H; hd++) {
        const canvas = h("canvas", { width: Tk, height: Tq });
        const b = h("button", {
          type: "button", class: "cx-thumb", "aria-label": `${d.layers[l]}, ${d.heads[hd]}`,
          title: `${d.layers[l]}, ${d.heads[hd]}`, style: `--c:${colours[hd]}`,
          onclick: () => { S.layer = l; S.cur = hd; S.all = false; S.on = S.on.map((_, j) => j === hd); render(); },
        }, canvas);
        thumbs.push({ l, hd, b, canvas });
        grid.append(b);
      }
    }
    function drawThumbs() {
      for (const { l, hd, canvas } of thumbs) {
        const ctx = canvas.getContext("2d"), img = ctx.createImageData(Tk, Tq);
        for (let q = 0; q < Tq; q++) for (let k = 0; k < Tk; k++) {
          const v = 255 - Math.round(255 * Math.sqrt(W(l, hd, q, k))), p = 4 * (q * Tk + k);
          img.data[p] = v; img.data[p + 1] = v; img.data[p + 2] = v; img.data[p + 3] = 255;
        }
        ctx.putImageData(img, 0, 0);
      }
    }

    // ---- the top-k table (for screen readers, and anyone who wants numbers) ---------------
    const tbody = h("tbody"), caption = h("caption");
    const thead = h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "token"),
      ...Array.from({ length: d.topk }, (_, i) => h("th", { scope: "col" }, `#${i + 1}`))));
    const table = h("details", { class: "cx-table" },
      h("summary", {}, `table: top ${d.topk} weights per token`), h("table", {}, caption, thead, tbody));

    root.querySelector(".cx-fallback")?.remove();
    const body = h("div", { class: "cx-body" },
      h("div", { class: "cx-col cx-left" }, colHead(cross ? "queries (target)" : "query"), ...qButtons),
      h("div", { class: "cx-mid" }, colHead(""), svg),
      h("div", { class: "cx-col cx-right" }, colHead(cross ? "keys (source)" : "key"), ...kButtons));
    root.append(
      d.title ? h("p", { class: "cx-title" }, d.title) : "",
      h("div", { class: "cx-controls" },
        h("span", { class: "cx-group", role: "group", "aria-label": "direction" }, ...dirButtons),
        L > 1 ? h("label", { for: `${uid}-layer` }, `${d.layer_label || "layer"} `) : "", L > 1 ? layerSelect : "",
        h("label", { for: `${uid}-thr` }, "hide below "), thrInput, thrOut,
        hasSpecial ? h("span", {}, hideBox, h("label", { for: `${uid}-hide` }, " hide special tokens and renormalise")) : "",
        download, link),
      h("div", { class: "cx-controls cx-heads", role: "group", "aria-label": "heads" }, allButton, ...chips),
      status, body,
      h("details", { class: "cx-thumbs", open: true }, h("summary", {}, `every ${d.layer_label || "layer"} and head (click one)`), grid),
      table);

    // ---- drawing ------------------------------------------------------------------------------
    function setDir(dir) {
      if (dir === S.dir) return;
      S.dir = dir;
      const side = dir === "to" ? "q" : "k", n = side === "q" ? Tq : Tk;
      if (S.lock) S.lock = { side, i: Math.min(S.lock.i, n - 1) };
      S.preview = null;
    }
    // y of each visible token (hidden special tokens take no row)
    function rows(special, n) {
      const y = new Array(n).fill(-1);
      for (let i = 0, r = 0; i < n; i++) if (visible(special, i)) y[i] = (r++ + 0.5) * ROW;
      return y;
    }
    function render() {
      const yq = rows(qspecial, Tq), yk = rows(kspecial, Tk);
      qButtons.forEach((b, i) => { b.hidden = yq[i] < 0; });
      kButtons.forEach((b, i) => { b.hidden = yk[i] < 0; });
      svg.setAttribute("height", Math.max(...yq, ...yk) + ROW / 2);
      const sel = S.preview || S.lock;
      const heads = S.on.map((on, i) => on ? i : -1).filter(i => i >= 0);
      const paths = [];
      if (sel && (sel.side === "q" ? yq : yk)[sel.i] >= 0) {
        for (const hd of heads) {
          const n = sel.side === "q" ? Tk : Tq;
          for (let j = 0; j < n; j++) {
            const [q, k] = sel.side === "q" ? [sel.i, j] : [j, sel.i];
            const w = W(S.layer, hd, q, k);
            if (w <= 0 || w < S.thr || yq[q] < 0 || yk[k] < 0) continue;
            const x = ARC_W / 2;
            paths.push(`<path d="M0,${yq[q]}C${x},${yq[q]} ${x},${yk[k]} ${ARC_W},${yk[k]}" ` +
              `stroke="${colours[hd]}" stroke-width="${(0.5 + 6 * w).toFixed(2)}" ` +
              `stroke-opacity="${Math.min(1, 0.1 + Math.sqrt(w)).toFixed(2)}"><title>${w.toFixed(3)}</title></path>`);
          }
        }
      }
      arcs.innerHTML = paths.join("");
      hint.style.display = sel ? "none" : "";
      // pressed states
      [...qButtons, ...kButtons].forEach(b => {
        const side = b.dataset.side, i = +b.dataset.i;
        b.setAttribute("aria-pressed", String(!!S.lock && S.lock.side === side && S.lock.i === i));
        b.classList.toggle("cx-active", !!sel && sel.side === side && sel.i === i);
      });
      dirButtons.forEach(b => b.setAttribute("aria-pressed", String(b.dataset.dir === S.dir)));
      allButton.setAttribute("aria-pressed", String(S.all));
      chips.forEach((c, i) => c.setAttribute("aria-pressed", String(S.on[i])));
      thumbs.forEach(t => t.b.setAttribute("aria-pressed", String(t.l === S.layer && S.on[t.hd] && (!S.all || t.hd === S.cur))));
      layerSelect.value = S.layer;
      const who = sel ? `\u201c${(sel.side === "q" ? qtok : ktok)[sel.i]}\u201d ${sel.side === "q" ? "attends to" : "is attended by"}` : "no token selected";
      status.textContent = `${d.layers[S.layer]}, ${S.all ? heads.map(i => d.heads[i]).join(", ") : d.heads[S.cur]}: ${who}` +
        (S.lock ? " (locked; Esc unlocks)" : "");
      renderTable();
    }
    function renderTable() {
      const to = S.dir === "to", rowsToks = to ? qtok : ktok, other = to ? ktok : qtok;
      const rowSpecial = to ? qspecial : kspecial, otherSpecial = to ? kspecial : qspecial;
      caption.textContent = `${d.layers[S.layer]}, ${d.heads[S.cur]}: each ${to ? "query" : "key"} ` +
        `token's largest weights (${to ? "attends to" : "attended by"})`;
      const trs = [];
      rowsToks.forEach((t, i) => {
        if (!visible(rowSpecial, i)) return;
        const ws = other.map((_, j) => [j, to ? W(S.layer, S.cur, i, j) : W(S.layer, S.cur, j, i)])
          .filter(([j]) => visible(otherSpecial, j)).sort((a, b) => b[1] - a[1]).slice(0, d.topk);
        trs.push(h("tr", {}, h("th", { scope: "row" }, t),
          ...ws.map(([j, w]) => h("td", {}, `${other[j]} ${w.toFixed(3)}`))));
      });
      tbody.replaceChildren(...trs);
    }

    function downloadSvg() {
      const yq = rows(qspecial, Tq), yk = rows(kspecial, Tk);
      const lw = 8 * Math.max(4, ...qtok.map(t => t.length), ...ktok.map(t => t.length));
      const height = Math.max(...yq, ...yk) + ROW / 2 + 30;
      const label = (t, x, y, anchor) => y < 0 ? "" :
        `<text x="${x}" y="${y + 30}" text-anchor="${anchor}" dominant-baseline="middle">${escapeXml(t)}</text>`;
      const text = `<svg xmlns="${SVGNS}" width="${2 * lw + ARC_W}" height="${height}" font-family="sans-serif" font-size="13">` +
        `<rect width="100%" height="100%" fill="#fff"/><text x="4" y="16">${escapeXml(status.textContent)}</text>` +
        qtok.map((t, i) => label(t, lw - 6, yq[i], "end")).join("") +
        ktok.map((t, i) => label(t, lw + ARC_W + 6, yk[i], "start")).join("") +
        `<g transform="translate(${lw},30)" fill="none">${arcs.innerHTML}</g></svg>`;
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
      link.click();
    }

    root.addEventListener("keydown", e => {
      if (e.key === "Escape") { S.lock = null; S.preview = null; render(); }
    });
    drawThumbs();
    render();
  }

  // Find the container by id (document.currentScript is null in JupyterLab, and its output
  // may not be attached yet when the script runs: retry for a few seconds).
  async function init(id, tries = 0) {
    const root = document.getElementById(id);
    if (!root) {
      if (tries < 100) setTimeout(() => init(id, tries + 1), 50);
      return;
    }
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    const d = JSON.parse(root.querySelector("script.cx-data").textContent);
    let bytes;
    try {
      bytes = await inflate(b85decode(d.w, d.n));
    } catch (e) {
      // DecompressionStream: Chrome 80, Firefox 113, Safari 16.4 and later
      root.querySelector(".cx-fallback").textContent = `attention explorer: cannot decode its data here (${e})`;
      throw e;
    }
    Figure(root, d, bytes);
    root.dataset.drawn = "1";
  }

  return { version: 1, init };
})();
