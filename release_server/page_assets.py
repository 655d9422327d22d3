"""The page's inline CSS, script and icon: constants, never built from data, so the
Content-Security-Policy can name each by its sha256 (see ``page.PAGE_HEADERS``).

The markup they work on (``page.files_table``): a ``<table class="files">`` with one
``<tbody>`` per family. Its first row is the family's newest file; in its name cell,
``<details class="more">`` toggles the rows after it (the older versions, shown by CSS through
``:has``, so it works without the script). A row with ``data-stable`` has a stable link: the
table's ``data-latest`` followed by ``data-stable``. Cells: name, version, size, uploaded,
downloads, SHA-256. The script adds the Copy buttons and runs the filter. Other tables
(``class="list"``: repositories, releases) are plain rows whose cells name themselves with
``data-label`` on narrow screens.
"""

from __future__ import annotations

CSS = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;\
--head:#f6f8fa;--old:#fafbfc;--link:#0b57d0;--focus:#0b57d0;--ok:#1a7f37}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;\
--line:#3d444d;--head:#161b22;--old:#10151c;--link:#6cb6ff;--focus:#6cb6ff;--ok:#3fb950}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0 auto;max-width:84rem;padding:1rem;background:var(--bg);color:var(--fg);\
font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}
a{color:var(--link)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
code{font:.875rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.hint{color:var(--muted);margin:.25rem 0}
.cmd{display:flex;gap:.5rem;align-items:center;padding:.5rem .75rem;margin:.5rem 0 1rem;\
background:var(--head);border:1px solid var(--line);border-radius:6px}
.cmd code{flex:1}
button,input{font:inherit;color:inherit}
button{padding:.125rem .625rem;border:1px solid var(--line);border-radius:6px;\
background:var(--bg);cursor:pointer;white-space:nowrap;font-size:.875rem;min-width:4.5rem}
button:hover{border-color:var(--muted)}
button.done{color:var(--ok);border-color:var(--ok)}
.tools{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;margin:0 0 .75rem}
.tools label{font-weight:600}
input{flex:1 1 16rem;max-width:28rem;padding:.375rem .625rem;background:var(--bg);\
border:1px solid var(--muted);border-radius:6px}
#count{color:var(--muted);margin:0}
table{width:100%;border-collapse:collapse}
caption{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
th,td{padding:.5rem .625rem;text-align:left;vertical-align:baseline;white-space:nowrap}
thead th{background:var(--head);font-size:.875rem;border-bottom:1px solid var(--line)}
tbody{border-bottom:1px solid var(--line)}
td:first-child{white-space:normal;overflow-wrap:anywhere;width:100%}
.files tr:first-child td:first-child>a{font-weight:600}
.files :is(td,th):is(:nth-child(3),:nth-child(5)),.list .num{text-align:right;\
font-variant-numeric:tabular-nums}
.files tbody:not(:has(.more[open])) tr+tr{display:none}
.files tr+tr{background:var(--old);font-size:.9375rem}
.files tr+tr td{padding-top:.3125rem;padding-bottom:.3125rem}
.files tr+tr td:first-child{padding-left:2rem}
.files tr+tr:last-child td{padding-bottom:.625rem}
.list tr+tr{border-top:1px solid var(--line)}
.list td:first-child>a{font-weight:600}
h2{font-size:1.125rem;margin:1.5rem 0 .5rem}
.meta{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;color:var(--muted);\
margin:0 0 .75rem}
.badge{display:inline-block;padding:0 .5rem;margin-left:.5rem;border:1px solid var(--line);\
border-radius:1rem;font-size:.75rem;font-weight:600;color:var(--muted);vertical-align:.0625rem}
.badge.latest{color:var(--ok);border-color:var(--ok)}
.notes{white-space:pre-wrap;overflow-wrap:anywhere;margin:0 0 1rem;padding:.75rem;\
border-left:3px solid var(--line);background:var(--head)}
.acts{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem .5rem;margin:.25rem 0 .125rem;\
font-size:.8125rem}
.acts button{font-size:inherit;min-width:0;padding:0 .5rem;color:var(--muted)}
.acts button.done{color:var(--ok)}
.acts code{flex-basis:100%}
.more summary{color:var(--muted);padding:0 .25rem}
.more summary::before{content:"\\25B6\\A0";content:"\\25B6\\A0"/"";font-size:.75rem}
.more[open] summary::before{content:"\\25BC\\A0";content:"\\25BC\\A0"/""}
td:last-child details{display:inline-block;margin-right:.5rem;baseline-source:first}
td:last-child details code{display:inline-block;width:16ch;white-space:normal;\
overflow-wrap:anywhere}
summary{list-style:none;cursor:pointer;border-radius:4px}
summary::-webkit-details-marker{display:none}
summary code::before{content:"\\25B6\\A0";content:"\\25B6\\A0"/"";color:var(--muted)}
details[open] summary code::before{content:"\\25BC\\A0";content:"\\25BC\\A0"/""}
summary code::after{content:"\\2026"}
details[open] summary code::after{content:none}
.empty{padding:2rem 1rem;text-align:center;border:1px dashed var(--line);border-radius:6px}
.empty h2{font-size:1.25rem;margin:0 0 .5rem}
.empty .cmd{text-align:left}
.note{margin-top:.75rem}
footer{margin-top:1.5rem;color:var(--muted);font-size:.875rem}
@media (max-width:70rem){
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
table,tbody{display:block}
tr{display:flex;flex-wrap:wrap;gap:.125rem 1rem;padding:.75rem 0}
tr::after{content:"";flex-basis:100%}
td{display:block;padding:0!important;white-space:normal;text-align:left!important;order:1}
td:first-child{display:contents}
td:first-child>a{font-size:1.0625rem;order:0}
.files td:nth-child(4),.files td:last-child{flex-basis:100%}
.files td:nth-child(4){order:2}
.files td:nth-child(2)::before{content:"Version ";color:var(--muted)}
.files td:nth-child(3)::before{content:"Size ";color:var(--muted)}
.files td:nth-child(4)::before{content:"Uploaded ";color:var(--muted)}
.files td:nth-child(5)::before{content:"Downloads ";color:var(--muted)}
.list td[data-label]::before{content:attr(data-label) " ";color:var(--muted)}
.files td:last-child{order:3;display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem .5rem}
.files td:last-child::before{content:"SHA-256";color:var(--muted);white-space:nowrap}
td:last-child details{margin:0}
.acts{order:4;flex-basis:100%;margin:.375rem 0 0;font-size:.875rem}
.acts button{padding:.1875rem .625rem}
.files tr+tr{margin:0 0 .5rem .5rem;padding:.5rem .625rem;border-left:3px solid var(--line)}
.files tr+tr td:first-child>a{font-size:1rem}
.list td:first-child{display:block;flex-basis:100%}
.cmd{flex-wrap:wrap}
}
"""

SCRIPT = """\
"use strict";
function tell(button, text, ok) {
  if (!button.style.minWidth) button.style.minWidth = `${button.offsetWidth}px`;  // no jump
  button.textContent = text;
  button.classList.toggle("done", ok);
  clearTimeout(button.timer);
  button.timer = setTimeout(() => {
    button.textContent = button.dataset.label || "Copy";
    button.classList.remove("done");
  }, 4000);
}
async function copy(button) {
  const url = button.dataset.url;
  const box = button.parentElement;
  const details = url ? null : box.querySelector("details");
  let code = url ? null : details ? details.lastElementChild : button.previousElementSibling;
  try {
    await navigator.clipboard.writeText(url || code.textContent);
    tell(button, "Copied", true);
  } catch {
    if (details) details.open = true;
    if (url) {
      code = box.querySelector("code");
      const more = box.querySelector(".more");  // the URL goes before it (or last, if none)
      if (!code) code = box.insertBefore(document.createElement("code"), more);
      code.textContent = url;
    }
    const range = document.createRange();
    range.selectNodeContents(code);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    tell(button, "Selected: press Ctrl+C", false);
  }
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (button) copy(button);
});
function make(label, aria, url) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = button.dataset.label = label;
  button.setAttribute("aria-label", aria);
  if (url) button.dataset.url = button.title = url;
  return button;
}
const table = document.querySelector("table.files");
const families = table ? Array.from(table.tBodies) : [];
const rows = families.map((family) => Array.from(family.rows));
const links = rows.map((family) => family.map((row) => row.cells[0].firstElementChild));
rows.forEach((family, i) => {
  family.forEach((row, j) => {
    row.cells[5].append(make("Copy", `Copy SHA-256 of ${links[i][j].textContent}`));
  });
  const [row] = family;
  const link = links[i][0];
  const href = link.getAttribute("href");
  const acts = document.createElement("div");
  acts.className = "acts";
  acts.append(make("Copy link", `Copy link to ${link.textContent}`, href));
  const stable = row.dataset.stable;
  if (stable) {
    const url = `${table.dataset.latest}${stable}`;
    const name = decodeURIComponent(stable);
    acts.append(make("Copy stable link", `Copy stable link to the newest ${name}`, url));
  }
  const more = row.querySelector(".more");
  if (more) acts.append(more);
  row.cells[0].append(acts);
});
const filter = document.getElementById("filter");
if (filter) {
  const names = links.map((family) => family.map((link) => link.textContent.toLowerCase()));
  const count = document.getElementById("count");
  const total = count.textContent;
  const files = rows.reduce((sum, family) => sum + family.length, 0);
  const number = (n) => n.toLocaleString("en");
  const say = (n, one, many) => `${number(n)} ${n === 1 ? one : many}`;
  const opened = new Set();
  const narrow = () => {
    const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    let matched = 0;
    names.forEach((family, i) => {
      const hits = family.map((name) => words.every((word) => name.includes(word)));
      const hit = hits.filter(Boolean).length;
      matched += hit;
      if (hit) shown++;
      families[i].hidden = !hit;
      rows[i].forEach((row, j) => {
        if (j) row.hidden = !hits[j];
      });
      const more = rows[i][0].querySelector(".more");
      if (!more) return;
      const older = hit > 0 && !hits[0];
      if (older && !more.open) {
        more.open = true;
        opened.add(more);
      } else if (!older && opened.delete(more)) {
        more.open = false;
      }
    });
    count.textContent = words.length
      ? `${number(shown)} of ${say(families.length, "family", "families")}, ` +
        `${number(matched)} of ${say(files, "package", "packages")}`
      : total;
    document.getElementById("none").hidden = shown > 0;
  };
  let pending = 0;
  const remember = () => {
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set("q", filter.value);
    else url.searchParams.delete("q");
    if (url.href !== location.href) history.replaceState(history.state, "", url);
  };
  filter.closest(".tools").hidden = false;
  filter.addEventListener("input", () => {
    narrow();
    clearTimeout(pending);
    pending = setTimeout(remember, 250);
  });
  const shared = new URLSearchParams(location.search).get("q");
  if (shared) filter.value = shared;
  if (filter.value) narrow();
}
"""

# A package glyph, inline so the browser does not ask the server for /favicon.ico.
ICON = (
    "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
    "<path d='M8 1l7 3.5v7L8 15l-7-3.5v-7z' fill='%230b57d0'/>"
    "<path d='M1 4.5L8 8l7-3.5M8 8v7' stroke='%23fff' fill='none'/></svg>"
)
