"""The browser page for ``GET /packages``: packages in, one self-contained HTML document out.

The page loads nothing from anywhere (air-gapped installs), so its CSS and script are inline.
They are constants, never built from data, so their sha256 hashes are computed once here and
the Content-Security-Policy can forbid every other script and style.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from release_server.package import Package

CSS = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;\
--head:#f6f8fa;--link:#0b57d0;--focus:#0b57d0;--ok:#1a7f37}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;\
--line:#3d444d;--head:#161b22;--link:#6cb6ff;--focus:#6cb6ff;--ok:#3fb950}}
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
th,td{padding:.5rem .625rem;border-bottom:1px solid var(--line);text-align:left;\
vertical-align:baseline;white-space:nowrap}
thead th{background:var(--head);font-size:.875rem}
td:first-child{white-space:normal;overflow-wrap:anywhere;font-weight:600;width:100%}
td:nth-child(2),td:nth-child(4),th:nth-child(2),th:nth-child(4){text-align:right;\
font-variant-numeric:tabular-nums}
td:last-child code{margin-right:.5rem;overflow-wrap:normal}
.empty{padding:2rem 1rem;text-align:center;border:1px dashed var(--line);border-radius:6px}
.empty h2{font-size:1.25rem;margin:0 0 .5rem}
.empty .cmd{text-align:left}
footer{margin-top:1.5rem;color:var(--muted);font-size:.875rem}
@media (max-width:70rem){
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
table,tbody{display:block}
tr{display:grid;grid-template-columns:8.5rem 1fr;gap:.125rem 1rem;padding:.75rem 0;\
border-bottom:1px solid var(--line)}
td{display:block;border:0;padding:0;white-space:normal;text-align:left!important}
td:first-child,td:nth-child(3),td:last-child{grid-column:1/-1}
td:first-child{font-size:1.0625rem}
td:nth-child(3){order:1}
td:nth-child(2)::before{content:"Size ";color:var(--muted)}
td:nth-child(3)::before{content:"Uploaded ";color:var(--muted)}
td:nth-child(3)::after{content:" UTC"}
td:nth-child(4)::before{content:"Downloads ";color:var(--muted)}
td:last-child{order:2;display:flex;align-items:center;gap:.5rem;margin-top:.25rem}
td:last-child code{flex:1;margin:0;overflow-wrap:anywhere}
.cmd{flex-wrap:wrap}
}
"""

SCRIPT = """\
"use strict";
function tell(button, text, ok) {
  button.textContent = text;
  button.classList.toggle("done", ok);
  setTimeout(() => { button.textContent = "Copy"; button.classList.remove("done"); }, 4000);
}
async function copy(button) {
  const code = button.previousElementSibling;
  try {
    await navigator.clipboard.writeText(code.textContent);
    tell(button, "Copied", true);
  } catch {
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
const filter = document.getElementById("filter");
if (filter) {
  const rows = Array.from(document.querySelectorAll("tbody tr"));
  const names = rows.map((row) => row.cells[0].textContent.toLowerCase());
  const count = document.getElementById("count");
  const total = count.textContent;
  const narrow = () => {
    const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row, i) => {
      row.hidden = !words.every((word) => names[i].includes(word));
      if (!row.hidden) shown++;
    });
    count.textContent = words.length ? `${shown} of ${total}` : total;
    document.getElementById("none").hidden = shown > 0;
  };
  filter.closest(".tools").hidden = false;
  filter.addEventListener("input", narrow);
  if (filter.value) narrow();
}
"""


# A package glyph, inline so the browser does not ask the server for /favicon.ico.
ICON = (
    "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
    "<path d='M8 1l7 3.5v7L8 15l-7-3.5v-7z' fill='%230b57d0'/>"
    "<path d='M1 4.5L8 8l7-3.5M8 8v7' stroke='%23fff' fill='none'/></svg>"
)


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 KiB``, ``120 MiB`` (binary units)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _row(package: Package, base_url: str) -> str:
    name = escape(package.name)
    href = escape(f"{base_url}/assets/{quote(package.name, safe='')}")
    created = package.created_at
    return (
        f'<tr><td><a href="{href}" download>{name}</a></td>'
        f"<td>{human_size(package.size)}</td>"
        f'<td><time datetime="{created}">{created[:10]} {created[11:16]}</time></td>'
        f"<td>{package.downloads:,}</td>"
        f"<td><code>{escape(package.sha256)}</code>"
        f'<button type="button" class="copy" aria-label="Copy SHA-256 of {name}">Copy</button>'
        "</td></tr>\n"
    )


def _count(number: int) -> str:
    return f"{number:,} package" if number == 1 else f"{number:,} packages"


def _command(text: str, label: str) -> str:
    return (
        f'<div class="cmd"><code>{escape(text)}</code>'
        f'<button type="button" class="copy" aria-label="{label}">Copy</button></div>'
    )


def render_page(packages: Sequence[Package], *, base_url: str) -> str:
    """The whole page; ``packages`` come sorted newest first and keep that order."""
    base = escape(base_url)
    if packages:
        body = (
            '<p class="hint">Fetch the newest release as JSON:</p>'
            + _command(f"curl -fsSL {base_url}/latest", "Copy the curl command")
            + '<div class="tools" hidden><label for="filter">Filter</label>'
            '<input id="filter" type="search" placeholder="Part of a name" autocomplete="off" '
            'spellcheck="false" aria-describedby="count">'
            f'<p id="count" role="status">{_count(len(packages))}</p></div>\n'
            "<table><caption>Packages, newest first</caption><thead><tr>"
            '<th scope="col">Name</th><th scope="col">Size</th>'
            '<th scope="col">Uploaded (UTC)</th><th scope="col">Downloads</th>'
            '<th scope="col">SHA-256</th></tr></thead><tbody>\n'
            + "".join(_row(package, base_url) for package in packages)
            + '</tbody></table>\n<p id="none" class="empty" hidden>No package name matches '
            "the filter.</p>\n"
        )
    else:
        body = (
            '<section class="empty"><h2>No packages yet</h2>'
            '<p class="hint">Upload one with a token (replace <code>$TOKEN</code> and the '
            "file):</p>"
            + _command(
                f'curl -fsS -H "Authorization: Bearer $TOKEN" -F file=@dist/app.zip '
                f"{base_url}/upload",
                "Copy the upload command",
            )
            + "</section>\n"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<link rel="icon" href="{ICON}">'
        f"<title>Packages · release-server</title><style>{CSS}</style></head>\n"
        f"<body><main><h1>Packages</h1>\n{body}</main>\n"
        f'<footer><a href="{base}/packages?format=json">JSON</a> · '
        f'<a href="{base}/latest">Latest release</a> · '
        f'<a href="{base}/openapi.yaml">API</a></footer>\n'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
