// fmtune dashboard: keeps the page live (asks for its live part every
// second, swaps it in when it changed, no reload), and sorts and filters
// the trial table. Plain script, served by the fmtune binary itself.
"use strict";
(function () {
  const live = document.getElementById("live");
  const status = document.getElementById("status");
  if (!live) return;
  let etag = live.dataset.etag || "";
  const poll = parseInt(live.dataset.poll, 10) || 1000;
  // What the reader chose, kept across refreshes.
  const view = { sortKey: null, sortDir: 1, state: "", kind: "", query: "" };

  async function refresh() {
    const u = new URL(location.href);
    u.searchParams.set("fragment", "1");
    try {
      const r = await fetch(u, { headers: etag ? { "If-None-Match": etag } : {}, cache: "no-store" });
      if (r.status === 200) {
        const html = await r.text();
        etag = r.headers.get("ETag") || "";
        swap(html);
      } else if (r.status !== 304 && r.status !== 404) {
        // 404: the study or trial is not there (yet); keep asking.
        throw new Error("HTTP " + r.status);
      }
      setStatus(true);
    } catch (e) {
      setStatus(false);
    }
    setTimeout(refresh, poll);
  }

  function setStatus(ok) {
    if (!status) return;
    status.classList.toggle("stale", !ok);
    status.textContent = ok ? "live · " + new Date().toLocaleTimeString() : "connection lost, retrying";
  }

  // swap replaces the live part, keeping the focus and caret of a filter.
  function swap(html) {
    const active = document.activeElement;
    const control = active && active.dataset ? active.dataset.control : null;
    const caret = control && active.selectionStart;
    live.innerHTML = html;
    enhance();
    if (control) {
      const el = live.querySelector('[data-control="' + control + '"]');
      if (el) {
        el.focus();
        if (caret != null && el.setSelectionRange) el.setSelectionRange(caret, caret);
      }
    }
  }

  function enhance() {
    live.querySelectorAll("table.trials").forEach(setupTable);
  }

  function setupTable(table) {
    const rows = Array.from(table.tBodies[0].rows).filter((r) => r.dataset.state);
    const heads = Array.from(table.tHead.rows[0].cells);
    const col = {};
    heads.forEach((th, i) => { col[th.dataset.key] = i; });
    heads.forEach((th) => {
      if (!th.dataset.sort) return;
      th.title = "Sort by " + th.textContent;
      th.addEventListener("click", () => {
        view.sortDir = view.sortKey === th.dataset.key ? -view.sortDir : 1;
        view.sortKey = th.dataset.key;
        apply();
      });
    });
    const controls = table.closest("section").querySelector(".controls");
    let count = null;
    if (controls && rows.length) {
      controls.hidden = false;
      controls.textContent = "";
      const states = distinct(rows.map((r) => r.dataset.state));
      controls.append(
        select("state", "any state", states.map((s) => [s, s])),
        select("kind", "any source", [["sampled", "sampled (grid, retries too)"], ["manual", "manual"]]),
        input("query", "filter: optimizer=adam lr<0.01 batch>=256 or any text"),
      );
      count = document.createElement("span");
      count.className = "count";
      controls.append(count);
    }
    apply();

    function apply() {
      const terms = view.query.trim().split(/\s+/).filter(Boolean);
      let shown = 0;
      rows.forEach((r) => {
        const ok = (!view.state || r.dataset.state === view.state) &&
          (!view.kind || r.dataset.kind === view.kind) &&
          terms.every((t) => matches(r, t));
        r.hidden = !ok;
        if (ok) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " trials";
      heads.forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
      const i = col[view.sortKey];
      if (i === undefined) return;
      heads[i].classList.add(view.sortDir > 0 ? "sorted-asc" : "sorted-desc");
      const numeric = heads[i].dataset.sort === "num" ||
        (heads[i].dataset.sort === "auto" && rows.every((r) => value(r, i) === "" || !isNaN(Number(value(r, i)))));
      const sorted = rows.slice().sort((a, b) => {
        const x = value(a, i), y = value(b, i);
        if (x === "" || y === "") return (x === "") - (y === "");
        const c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return c * view.sortDir || Number(a.cells[0].dataset.v) - Number(b.cells[0].dataset.v);
      });
      const body = table.tBodies[0];
      sorted.forEach((r) => body.appendChild(r));
    }

    // matches: name=value, name<x, name<=x, name>x, name>=x, or any text.
    function matches(r, term) {
      const m = term.match(/^([\w.-]+)(<=|>=|=|<|>)(.+)$/);
      if (!m || col[m[1]] === undefined) {
        return r.textContent.toLowerCase().includes(term.toLowerCase());
      }
      const v = value(r, col[m[1]]);
      const a = Number(v), b = Number(m[3]);
      if (m[2] === "=") return v.toLowerCase() === m[3].toLowerCase() || (!isNaN(a) && !isNaN(b) && a === b);
      if (v === "" || isNaN(a) || isNaN(b)) return false;
      return m[2] === "<" ? a < b : m[2] === "<=" ? a <= b : m[2] === ">" ? a > b : a >= b;
    }

    function select(name, any, options) {
      const s = document.createElement("select");
      s.dataset.control = name;
      s.setAttribute("aria-label", any);
      [["", any]].concat(options).forEach(([v, text]) => {
        const o = document.createElement("option");
        o.value = v;
        o.textContent = text;
        s.append(o);
      });
      s.value = view[name];
      s.addEventListener("change", () => { view[name] = s.value; apply(); });
      return s;
    }

    function input(name, placeholder) {
      const el = document.createElement("input");
      el.type = "search";
      el.dataset.control = name;
      el.placeholder = placeholder;
      el.setAttribute("aria-label", placeholder);
      el.value = view[name];
      el.addEventListener("input", () => { view[name] = el.value; apply(); });
      return el;
    }
  }

  function value(r, i) {
    const c = r.cells[i];
    if (!c) return "";
    return c.dataset.v !== undefined ? c.dataset.v : c.textContent.trim();
  }

  function distinct(list) {
    return Array.from(new Set(list)).sort();
  }

  enhance();
  setStatus(true);
  setTimeout(refresh, poll);
})();
