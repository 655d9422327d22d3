"""Hostile input, generated with hypothesis: file names, multipart bodies, Range headers,
query strings and Authorization headers, against one real server.

For every input: an answer arrives in bounded time, it is never a 5xx, nothing is written
outside the storage directory (a canary tree beside it is compared after every example),
and no temp file outlives its request. Where the outcome is fully determined (a name is
valid or not, a plain form, a single byte range) the exact answer is checked too.

The search is derandomized so CI is stable; HARDENING_EXPLORE=1 explores afresh with more
examples (hypothesis prints any falsifying example; make it an explicit test).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import pytest
from conftest import TOKEN, ServerProcess, default_command
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from .helpers import (
    MiB,
    Reply,
    bearer,
    build_head,
    exchange,
    form_part,
    multipart,
    request,
    snapshot,
    temp_files,
    wait_until,
)

pytestmark = pytest.mark.hardening

EXPLORE = os.environ.get("HARDENING_EXPLORE") == "1"
FUZZ = settings(
    max_examples=1000 if EXPLORE else 150,
    derandomize=not EXPLORE,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_UPLOAD = MiB
READ_TIMEOUT = 2
#: A request must be answered (or its connection closed) within this many seconds.
ANSWER_TIMEOUT = READ_TIMEOUT + 8
BOUNDARY = b"hostile-boundary-4f2a"


# -- the server and the canary --------------------------------------------------------------


@dataclass
class Target:
    """The server under attack, its storage directory, and what must stay untouched."""

    server: ServerProcess
    root: Path
    storage: Path
    before: dict[str, str]
    known: bytes

    @property
    def port(self) -> int:
        return self.server.port

    def reset(self) -> None:
        """Remove what the last example stored (by hand: the directory is the truth)."""
        for entry in os.scandir(self.storage):
            if entry.name in (".meta", "known.bin") or entry.name.startswith(".tmp-"):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def assert_contained(self) -> None:
        """Nothing outside storage changed; inside it, only plain files and .meta."""
        assert snapshot(self.root, skip=self.storage) == self.before
        for entry in os.scandir(self.storage):
            if entry.name == ".meta":
                continue
            assert entry.is_file(follow_symlinks=False), f"unexpected entry {entry.name!r}"
        assert (self.storage / "known.bin").read_bytes() == self.known
        assert wait_until(lambda: temp_files(self.storage) == [], timeout=ANSWER_TIMEOUT)
        assert self.server.proc.poll() is None, "the server died"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[Target]:
    """storage and canary nested four levels deep, so that '../' * 4 still lands in the
    snapshot; the canary holds files named like the ones a traversal would aim at."""
    root = tmp_path_factory.mktemp("hostile")
    nest = root / "l1" / "l2" / "l3"
    storage = nest / "storage"
    storage.mkdir(parents=True)
    for folder in (root, nest, nest / "canary", root / "l1" / "canary"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("canary.txt", "passwd", "x.txt", "pwned", "evil.html"):
            (folder / name).write_bytes(b"canary " + name.encode())
    known = os.urandom(10_000)
    (storage / "known.bin").write_bytes(known)
    server = ServerProcess(
        storage,
        command=[*default_command(), "--engine", engine],
        env={
            "MAX_UPLOAD_SIZE": str(MAX_UPLOAD),
            "MAX_PACKAGES": "0",
            "READ_TIMEOUT": str(READ_TIMEOUT),
            "KEEP_ALIVE_TIMEOUT": "2",
            "GRACEFUL_TIMEOUT": "2",
        },
    )
    try:
        yield Target(server, root, storage, snapshot(root, skip=storage), known)
    finally:
        server.stop()


def assert_answered(reply: Reply | None, allowed: set[int] | None = None) -> Reply:
    """An answer arrived, below 500 (or one of ``allowed``, e.g. 501 for an unknown
    Transfer-Encoding, which RFC 9112 prescribes)."""
    assert reply is not None, "the server closed the connection without an answer"
    if allowed is not None:
        assert reply.status in allowed, reply
    else:
        assert reply.status < 500, reply
    return reply


# -- names ----------------------------------------------------------------------------------


def spec_valid(raw: bytes) -> bool:
    """SPEC section 4, written independently of the server: 1-255 bytes of UTF-8, one path
    segment, no NUL or control characters, not . or .., no leading dot; and (the second
    review) no bidirectional controls or line separators."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return (
        1 <= len(raw) <= 255
        and name not in (".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(char) == "Cc" for char in name)
        and not any(unicodedata.bidirectional(char) in BIDI_CONTROLS for char in name)
        and not any(char in BIDI_MARKS for char in name)
        and not any(unicodedata.category(char) in ("Zl", "Zp") for char in name)
    )


#: Unicode's explicit bidirectional formatting classes (embeddings, overrides, isolates,
#: marks) as unicodedata.bidirectional() names them.
BIDI_CONTROLS = frozenset(("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"))
#: The three invisible marks (ALM, LRM, RLM), whose class is that of letters.
BIDI_MARKS = frozenset("\u061c\u200e\u200f")


#: Pieces of path traversal in the encodings servers and filesystems have been fooled by.
TRAVERSAL = (
    "..", ".", "...", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%c0%ae%c0%ae",
    "%e0%80%ae", "%ef%bc%8e%ef%bc%8e", "%e2%80%a4%e2%80%a4", "..%00", "..;", "%00",
)  # fmt: skip
SEPARATORS = (
    "/", "\\", "%2f", "%2F", "%5c", "%5C", "%252f", "%255c", "%c0%af", "%e0%80%af", "%c1%9c",
    "%e2%88%95", "%e2%81%84", "%ef%bc%8f", "%ef%bc%bc", "//", "/./", "%2f%2f",
)  # fmt: skip
TARGETS = ("canary", "canary.txt", "l1", "l2", "l3", "passwd", "x.txt", "storage", ".meta")
#: Names that are special somewhere (Windows devices, NTFS streams) or that normalise into
#: something else (NFKC turns fullwidth dots into '..', the ligature into 'fi').
SPECIAL_NAMES = (
    "%22", "%0D%0A", "%0a",
    "CON", "PRN", "AUX", "NUL", "COM1", "LPT1", "con.txt", "NUL.tar.gz", "aux:", "file::$DATA",
    "a:b", "name.", "name ", " name", "\u00e9", "e\u0301", "\ufb01le", "\u212a", "\uff0e\uff0e",
    "\u2024\u2024", "\u202egpj.exe", "\ufeffbom", "\u200b", "x\u0085y", "x\u2028y", "\U0001f4e6",
    "-rf", "~", "$HOME", "`id`", "a;b", "a?b", "a#b", "a%b", "a+b", "*", "<>", '"', "'",
)  # fmt: skip


def percent(raw: bytes) -> str:
    return quote(raw, safe="")


def path_segments() -> st.SearchStrategy[str]:
    """What goes after /assets/ on the wire (already in wire form: ASCII)."""
    pieces = st.sampled_from((*TRAVERSAL, *SEPARATORS, *TARGETS))
    return st.one_of(
        st.lists(pieces, min_size=1, max_size=10).map("".join),
        st.sampled_from(SPECIAL_NAMES).map(lambda name: percent(name.encode())),
        st.text(max_size=120).map(lambda name: percent(name.encode("utf-8", "surrogatepass"))),
        st.binary(min_size=1, max_size=120).map(percent),
        st.integers(250, 260).map(lambda size: "n" * size),
        st.integers(120, 130).map(lambda size: percent(("\u00e9" * size).encode())),
    )


def filenames() -> st.SearchStrategy[bytes]:
    """Raw bytes for the filename="..." of a multipart part."""
    pieces = st.sampled_from(
        (*TRAVERSAL, *SEPARATORS, *TARGETS, *SPECIAL_NAMES, '"', "\\", ";", "\r\n", "%")
    )
    return st.one_of(
        st.lists(pieces, min_size=1, max_size=8).map(lambda parts: "".join(parts).encode()),
        st.sampled_from(SPECIAL_NAMES).map(lambda name: name.encode()),
        st.text(max_size=80).map(lambda name: name.encode("utf-8", "surrogatepass")),
        st.binary(max_size=80),
        st.integers(250, 260).map(lambda size: b"n" * size),
    )


@FUZZ
@given(segment=path_segments(), body=st.binary(min_size=1, max_size=2000))
@example(segment="..%2f..%2fcanary%2fpwned", body=b"x")
@example(segment="%2e%2e/%2e%2e/canary.txt", body=b"x")
@example(segment="..\\..\\canary.txt", body=b"x")
@example(segment="n" * 255, body=b"x")
def test_names_in_the_path_never_escape_storage(target: Target, segment: str, body: bytes) -> None:
    """PUT, GET, HEAD and DELETE /assets/{name}: a valid name round-trips exactly, an invalid
    one is 400, and nothing is ever written outside the storage directory."""
    raw = unquote_to_bytes(segment)
    assume(raw != b"known.bin")
    target.reset()
    auth = [bearer(TOKEN)]
    put = assert_answered(request(target.port, "PUT", f"/assets/{segment}", auth, body))
    assert put.status == (201 if spec_valid(raw) else 400), (raw, put)
    if put.status == 201:
        name = raw.decode()
        assert (target.storage / name).read_bytes() == body
        got = assert_answered(request(target.port, "GET", f"/assets/{segment}"), {200})
        assert got.body == body
        head = assert_answered(request(target.port, "HEAD", f"/assets/{segment}"), {200})
        assert head.headers["content-length"] == str(len(body))
        gone = request(target.port, "DELETE", f"/assets/{segment}", auth)
        assert_answered(gone, {204})
        assert not (target.storage / name).exists()
    else:
        for method in ("GET", "HEAD", "DELETE"):
            reply = assert_answered(request(target.port, method, f"/assets/{segment}", auth))
            assert reply.status == (404 if spec_valid(raw) else 400), (method, raw, reply)
    target.assert_contained()


@FUZZ
@given(filename=filenames(), data=st.binary(min_size=1, max_size=2000))
@example(filename=b"../../canary/pwned", data=b"x")
@example(filename=b"..\\..\\canary.txt", data=b"x")
@example(filename=b"C:\\l1\\..\\..", data=b"x")
@example(filename=b"%2e%2e%2fcanary.txt", data=b"x")
@example(filename=b"a%22b%0A.txt", data=b"x")
def test_multipart_filenames_never_escape_storage(
    target: Target, filename: bytes, data: bytes
) -> None:
    """A plain filename (no quote, backslash, line break or ';') is stored under exactly the
    name it means when that is valid and refused with 400 when not; any filename stays
    inside. What it means: WHATWG form encoding escapes '"', CR and LF as %22, %0D, %0A."""
    assume(filename != b"known.bin")
    target.reset()
    body = multipart([form_part(b"file", data, filename)], BOUNDARY)
    reply = assert_answered(post_form(target.port, body))
    meant = filename.replace(b"%22", b'"').replace(b"%0D", b"\r").replace(b"%0A", b"\n")
    plain = not any(char in filename for char in b'"\\\r\n;')
    if plain:
        assert reply.status == (200 if spec_valid(meant) else 400), (filename, reply)
    if reply.status == 200:
        stored = reply.json()
        assert isinstance(stored, dict)
        assert spec_valid(str(stored["name"]).encode())
        assert (target.storage / str(stored["name"])).is_file()
        if plain:  # a raw line break in the name ends the part's head: the data shifts
            assert stored["name"] == meant.decode()
            assert (target.storage / str(stored["name"])).read_bytes() == data
    else:
        assert reply.status in (400, 409), reply
    target.assert_contained()


# -- multipart bodies -----------------------------------------------------------------------


def post_form(
    port: int,
    body: bytes,
    content_type: bytes = b"multipart/form-data; boundary=" + BOUNDARY,
    framing: str = "honest",
) -> Reply | None:
    """POST /upload with ``body`` framed honestly, chunked, or with a Content-Length that
    promises more than is sent (then the sending side is shut)."""
    headers: list[tuple[str | bytes, str | bytes]] = [
        bearer(TOKEN),
        ("Content-Type", content_type),
        ("Connection", "close"),
    ]
    chunks = [body]
    half_close = False
    if framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        chunks = [b"%x\r\n%s\r\n" % (len(body), body) if body else b"", b"0\r\n\r\n"]
    elif framing == "lying":
        headers.append(("Content-Length", str(len(body) + 1000)))
        half_close = True
    else:
        headers.append(("Content-Length", str(len(body))))
    head = build_head("POST", "/upload", headers)
    return exchange(port, head, chunks, timeout=ANSWER_TIMEOUT, half_close=half_close)


@st.composite
def forms(draw: st.DrawFn) -> tuple[bytes, bytes, str, bool, bytes | None, bytes | None]:
    """(content type, body, framing, plain, filename, data of the single file part).

    ``plain`` forms are well-formed with small standard headers, so their outcome is
    determined; the others mix bad boundaries, huge or many headers, duplicate ``file``
    fields, junk around the parts and truncation."""
    plain = draw(st.booleans())
    boundary = BOUNDARY
    if not plain:
        boundary = draw(
            st.one_of(
                st.just(BOUNDARY),
                st.binary(max_size=100).filter(lambda b: b"\r" not in b and b"\n" not in b),
                st.integers(70, 5000).map(lambda n: b"B" * n),
            )
        )
    part_specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from((b"file", b"file", b"sha256", b"other", b"")),
                st.sampled_from((b"pkg.bin", b"other.bin", b"../x", b"")),
                st.binary(min_size=1, max_size=600),
            ),
            max_size=4,
        )
    )
    parts = []
    for field, filename, data in part_specs:
        if field == b"sha256":
            data = draw(st.sampled_from((hashlib.sha256(data).hexdigest().encode(), data)))
        extra = b""
        if not plain:
            extra = draw(
                st.sampled_from(
                    (
                        b"",
                        b"X-Big: " + b"h" * 5000 + b"\r\n",
                        b"X-Many: 1\r\n" * 40,
                        b"Content-Disposition: form-data; name=file; filename=second\r\n",
                        b"no colon here\r\n",
                        b":\r\n",
                    )
                )
            )
        parts.append(form_part(field, data, filename if field == b"file" else None, extra))
    body = multipart(parts, boundary)
    framing = "honest"
    if not plain:
        body = draw(st.sampled_from((b"", b"preamble\r\n", b"--\r\n"))) + body
        body += draw(st.sampled_from((b"", b"epilogue", b"--" + boundary + b"--\r\n")))
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))]
        framing = draw(st.sampled_from(("honest", "chunked", "lying")))
    content_type = draw(
        st.sampled_from(
            (
                b"multipart/form-data; boundary=" + boundary,
                b'multipart/form-data; boundary="' + boundary + b'"',
                b"multipart/form-data",
                b"multipart/form-data; boundary=",
                b"multipart/form-data; boundary=other; boundary=" + boundary,
                b"Multipart/Form-Data; BOUNDARY=" + boundary,
                b"multipart/mixed; boundary=" + boundary,
                b"text/plain",
            )
            if not plain
            else (b"multipart/form-data; boundary=" + BOUNDARY,)
        )
    )
    files = [spec for spec in part_specs if spec[0] == b"file"]
    single = files[0] if len(files) == 1 else None
    determined = plain and all(spec[0] != b"sha256" for spec in part_specs)
    return (
        content_type,
        body,
        framing,
        determined,
        single[1] if single else None,
        single[2] if single else None,
    )


@FUZZ
@given(form=forms())
def test_generated_multipart_bodies(
    target: Target, form: tuple[bytes, bytes, str, bool, bytes | None, bytes | None]
) -> None:
    target.reset()
    content_type, body, framing, determined, filename, data = form
    reply = post_form(target.port, body, content_type, framing)
    if framing == "lying":  # the client vanished mid-body: an answer is optional
        assert reply is None or reply.status < 500, reply
    else:
        reply = assert_answered(reply)
    stored = {e.name for e in os.scandir(target.storage) if not e.name.startswith(".")}
    if determined:
        assert reply is not None
        if filename is not None and spec_valid(filename) and BOUNDARY not in (data or b""):
            assert reply.status == 200, reply
            assert (target.storage / filename.decode()).read_bytes() == data
        else:
            assert reply.status == 400, reply
            assert stored == {"known.bin"}
    if reply is None or reply.status != 200:
        assert stored == {"known.bin"}, "a refused form left a package behind"
    target.assert_contained()


# -- Range and conditional headers ----------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(0, 12_000).map(str),
    st.integers(0, 10**40).map(str),
    st.just(""),
    st.integers(1, 6000).map(lambda n: "9" * n),  # past Python's 4300-digit int() limit
)
SINGLE_RANGE = st.tuples(st.integers(0, 12_000), st.integers(0, 12_000))


@FUZZ
@given(
    header=st.one_of(
        st.builds(lambda a, b: f"bytes={a}-{b}", NUMBERS, NUMBERS),
        st.lists(st.tuples(NUMBERS, NUMBERS), min_size=2, max_size=5).map(
            lambda pairs: "bytes=" + ",".join(f"{a}-{b}" for a, b in pairs)
        ),
        st.text(st.characters(codec="latin-1", exclude_characters="\r\n\0"), max_size=80),
        st.sampled_from(
            (
                "bytes=",
                "bytes=-",
                "bytes=--1",
                "bytes = 0-1",
                "BYTES=0-1",
                "items=0-1",
                "bytes=0-1,",
                "bytes=-0",
                "bytes=0-0",
                "bytes=-1-2",
                "bytes=1-2-3",
                "bytes=+1-2",
            )
        ),
    ),
    if_range=st.one_of(st.none(), st.text(max_size=70).map(lambda t: t.encode().hex()[:70])),
    conditional=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(("If-None-Match", "If-Modified-Since")),
            st.one_of(
                st.text(st.characters(codec="latin-1", exclude_characters="\r\n\0"), max_size=60),
                st.sampled_from(
                    (
                        "*",
                        "W/*",
                        '""',
                        "Mon, 1 Jan 99999 00:00:00 GMT",
                        "Thu, 01 Jan 1970 00:00:00 +9999",
                        "Sun, 06 Nov 1994 08:49:37 GMT",
                        "0",
                        "-1",
                    )
                ),
            ),
        ),
    ),
)
@example(header="bytes=0-0", if_range=None, conditional=None)
@example(header="bytes=-10001", if_range=None, conditional=None)
@example(header="bytes=10000-", if_range=None, conditional=None)
def test_range_and_conditional_headers(
    target: Target, header: str, if_range: str | None, conditional: tuple[str, str] | None
) -> None:
    """Whatever the headers, the answer is self-consistent: 200 the whole file, 206 exactly
    the slice its Content-Range names, 416 with ``bytes */size``, 304 with no body."""
    headers: list[tuple[str | bytes, str | bytes]] = [("Range", header.encode("latin-1"))]
    if if_range is not None:
        headers.append(("If-Range", if_range))
    if conditional is not None:
        headers.append((conditional[0], conditional[1].encode("latin-1")))
    reply = assert_answered(request(target.port, "GET", "/assets/known.bin", headers))
    known, size = target.known, len(target.known)
    assert reply.status in (200, 206, 304, 400, 416), reply
    if reply.status == 200:
        assert reply.body == known
    elif reply.status == 206:
        unit, _, span = reply.headers["content-range"].partition(" ")
        first, _, rest = span.partition("-")
        last, _, total = rest.partition("/")
        assert unit == "bytes" and int(total) == size
        assert reply.body == known[int(first) : int(last) + 1]
        assert int(first) <= int(last) < size
    elif reply.status == 416:
        assert reply.headers["content-range"] == f"bytes */{size}"
    elif reply.status == 304:
        assert reply.body == b""
    if conditional is None and if_range is None:
        simple = header.removeprefix("bytes=").split("-")
        if (
            header.startswith("bytes=")
            and len(simple) == 2
            and all(part.isdigit() and len(part) < 10 for part in simple)
        ):
            first, last = int(simple[0]), int(simple[1])
            if first <= last:
                expected = 206 if first < size else 416
                assert reply.status == expected, (header, reply)


# -- query strings, other routes, odd headers -----------------------------------------------

ROUTES = (
    "/", "/packages", "/latest", "/healthz", "/health", "/readyz", "/openapi.yaml",
    "/avatar.svg", "/upload", "/assets/known.bin", "/assets/", "/assets", "/nothing",
    "/repos/local/packages/releases", "/repos/local/packages/releases/latest",
    "/repos/local/packages/releases/1", "/repos/local/packages/releases/1/assets",
    "/repos/local/packages/releases/tags/latest", "/repos/local/packages/releases/tags/%2e%2e",
    "/repos/local/packages/releases/assets/1", "/repos/o/r/releases",
    "/repos/local/packages/releases/assets/99999999999999999999",
    "/api/v3/repos/local/packages/releases", "/acme/tool/releases/download/v1/a.zip",
    "/acme/tool/releases/latest/download/a.zip", "/acme/tool/releases/tag/v1",
    "/api/v3/users/x", "/api/v3/users/release-server/repos", "//packages", "/packages/",
)  # fmt: skip
QUERY_KEYS = ("format", "per_page", "page", "overwrite", "q", "", "format[]", "\u00e9")
LATIN1_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\0"), max_size=60)


@FUZZ
@given(
    method=st.sampled_from(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")),
    route=st.sampled_from(ROUTES),
    query=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=10)),
            st.one_of(
                st.text(max_size=40),
                st.integers(-(10**30), 10**30).map(str),
                st.integers(1, 4000).map(lambda n: "7" * n),
                st.sampled_from(("json", "html", "xml", "true", "0", "-1", "1e9", "NaN")),
            ),
        ),
        max_size=4,
    ),
    raw_tail=st.sampled_from(("", "&", "&&", "=", "%", "%zz", "%ff", "+", ";", "&a=%00")),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                (
                    "Accept",
                    "Host",
                    "X-Forwarded-Host",
                    "X-Forwarded-Proto",
                    "X-Request-ID",
                    "If-None-Match",
                    "Accept-Encoding",
                    "Content-Type",
                    "Expect",
                    "Cookie",
                )
            ),
            LATIN1_TEXT,
        ),
        max_size=3,
    ),
)
@example(method="GET", route="/packages", query=[("format", "html")], raw_tail="", headers=[])
@example(
    method="GET",
    route="/repos/local/packages/releases",
    query=[("per_page", "9" * 5000)],
    raw_tail="",
    headers=[],
)
def test_routes_with_generated_queries_and_headers(
    target: Target,
    method: str,
    route: str,
    query: list[tuple[str, str]],
    raw_tail: str,
    headers: list[tuple[str, str]],
) -> None:
    """No credentials are sent, so nothing may change; every answer is below 500."""
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query) + raw_tail
    target_path = route + ("?" + encoded if encoded else "")
    body = b"" if method in ("POST", "PUT", "PATCH") else None
    sent = [(name, value.encode("latin-1")) for name, value in headers if name != "Host"]
    reply = assert_answered(request(target.port, method, target_path, sent, body))
    if route == "/healthz" and method in ("GET", "HEAD") and reply.status == 200:
        assert reply.body in (b"OK", b"")
    target.assert_contained()
    assert {e.name for e in os.scandir(target.storage) if not e.name.startswith(".")} == {
        "known.bin"
    }


# -- Authorization --------------------------------------------------------------------------


def bearer_variants() -> st.SearchStrategy[bytes]:
    """Headers that carry exactly the right token (case and spacing vary), as Bearer or as
    GitHub's ``token`` scheme (SPEC §8.5)."""
    return st.builds(
        lambda scheme, gap, tail: f"{scheme}{gap}{TOKEN}{tail}".encode(),
        st.sampled_from(("Bearer", "bearer", "BEARER", "bEaReR", "token", "Token")),
        st.sampled_from((" ", "  ", "   ")),
        st.sampled_from(("", " ", "  ")),
    )


def wrong_authorizations() -> st.SearchStrategy[bytes]:
    """Headers that must never be accepted."""
    near = (
        TOKEN[:-1], TOKEN + "x", TOKEN.upper(), TOKEN[::-1], " ", "", TOKEN.replace("-", "\u2010"),
        TOKEN + "\u200b", "\u00a0" + TOKEN, TOKEN + "\u00a0",
    )  # fmt: skip
    return st.one_of(
        st.sampled_from(near).map(lambda credentials: f"Bearer {credentials}".encode()),
        st.sampled_from(("Basic", "Tokens", "Bearer:", "Bearer\t", "Bearer=", "")).map(
            lambda scheme: f"{scheme} {TOKEN}".encode()
        ),
        st.just(TOKEN.encode()),
        st.binary(max_size=300).filter(
            lambda value: b"\r" not in value and b"\n" not in value and TOKEN.encode() not in value
        ),
        st.integers(1000, 9000).map(lambda n: b"Bearer " + b"A" * n),
    )


@FUZZ
@given(
    value=st.one_of(bearer_variants(), wrong_authorizations()),
    method=st.sampled_from(("DELETE", "PUT", "POST")),
)
def test_authorization_headers(target: Target, value: bytes, method: str) -> None:
    """Only ``Bearer <token>`` (scheme in any case) is accepted; everything else is 401 with
    WWW-Authenticate (or 400 when the header is not even valid HTTP) and changes nothing."""
    target.reset()
    right = value.strip().split(b" ", 1)[0].lower() in (b"bearer", b"token") and (
        value.strip().split(b" ", 1)[-1].strip() == TOKEN.encode()
    )
    path = "/upload" if method == "POST" else "/assets/auth-probe.bin"
    body = multipart([form_part(b"file", b"data", b"auth-probe.bin")]) if method == "POST" else b"d"
    headers: list[tuple[str | bytes, str | bytes]] = [("Authorization", value)]
    if method == "POST":
        headers.append(
            ("Content-Type", b"multipart/form-data; boundary=" + b"hardening-boundary-7d1f")
        )
    reply = assert_answered(request(target.port, method, path, headers, body))
    if right:
        assert reply.status in (200, 201, 404), reply
    else:
        assert reply.status in (400, 401), reply
        if reply.status == 401:
            assert reply.headers["www-authenticate"].lower().startswith("bearer")
        assert not (target.storage / "auth-probe.bin").exists()
    target.assert_contained()


# -- bodies that lie, and limits ------------------------------------------------------------


def raw_put(target: Target, name: str, headers: list[tuple[str, str]], chunks: list[bytes],
            half_close: bool = False) -> Reply | None:  # fmt: skip
    head = build_head("PUT", f"/assets/{name}", [bearer(TOKEN), ("Connection", "close"), *headers])
    return exchange(target.port, head, chunks, timeout=ANSWER_TIMEOUT, half_close=half_close)


def chunked(data: bytes, size: int = 65536) -> list[bytes]:
    pieces = [b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size])
              for i in range(0, len(data), size)]  # fmt: skip
    return [*pieces, b"0\r\n\r\n"]


BODIES = {
    # name: (headers, chunks, half_close, allowed statuses or None for "no answer is fine")
    "content-length-longer-then-close": (
        [("Content-Length", "100000")], [b"x" * 50_000], True, None),
    "content-length-longer-then-stall": ([("Content-Length", "100000")], [b"x" * 50_000], False,
                                         None),
    "content-length-not-a-number": ([("Content-Length", "12abc")], [b"x" * 10], False, {400}),
    "content-length-negative": ([("Content-Length", "-1")], [b""], False, {400}),
    "content-length-unicode-digit": ([("Content-Length", "\u00b2")], [b"xx"], False, {400}),
    "content-length-twice-different": (
        [("Content-Length", "1"), ("Content-Length", "2")], [b"xx"], False, {400}),
    "content-length-over-limit": ([("Content-Length", str(MAX_UPLOAD + 1))], [b"x"], False, {413}),
    "chunked-bad-size": ([("Transfer-Encoding", "chunked")], [b"zz\r\nxx\r\n0\r\n\r\n"], False,
                         {400, None}),
    "chunked-truncated-then-close": (
        [("Transfer-Encoding", "chunked")], [b"10\r\nabc"], True, None),
    "chunked-over-limit": ([("Transfer-Encoding", "chunked")],
                           chunked(b"y" * (MAX_UPLOAD + 70_000)), False, {413}),
    "chunked-and-content-length": (
        [("Content-Length", "5"), ("Transfer-Encoding", "chunked")], chunked(b"z" * 5), False,
        {201, 400}),
    "transfer-encoding-unknown": ([("Transfer-Encoding", "gzip")], [b"x"], False, {400, 501}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BODIES))
def test_bodies_that_lie_or_overflow_store_nothing(target: Target, case: str) -> None:
    target.reset()
    headers, chunks, half_close, allowed = BODIES[case]
    started = time.monotonic()
    reply = raw_put(target, "lying.bin", headers, chunks, half_close)
    assert time.monotonic() - started < ANSWER_TIMEOUT
    if allowed is None or None in allowed:
        assert reply is None or reply.status < 500 or reply.status in (allowed or ()), reply
    else:
        assert_answered(reply, allowed)
    if reply is None or reply.status not in (200, 201):
        assert not (target.storage / "lying.bin").exists()
    else:
        assert (target.storage / "lying.bin").read_bytes() == b"z" * 5
    target.assert_contained()


def test_huge_request_heads_are_refused(target: Target) -> None:
    for headers in (
        [("X-Big", "h" * 100_000)],
        [(f"X-Many-{i}", "v") for i in range(2000)],
        [("Authorization", "Bearer " + "t" * 60_000)],
    ):
        head = build_head("GET", "/packages", [*headers, ("Connection", "close")])
        reply = exchange(target.port, head, timeout=ANSWER_TIMEOUT)
        assert reply is None or reply.status in (200, 400, 413, 431), reply
    long_target = "/assets/" + "a" * 70_000
    reply = exchange(target.port, build_head("GET", long_target), timeout=ANSWER_TIMEOUT)
    assert reply is None or reply.status in (400, 404, 414, 431), reply
    target.assert_contained()


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(
            [form_part(b"file", b"a" * 200_000, b"dup.bin"), form_part(b"file", b"b", b"dup.bin")],
            id="duplicate-file-fields",
        ),
        pytest.param(
            [form_part(b"file", b"a", b"one.bin"), form_part(b"file", b"b" * 200_000, b"two.bin")],
            id="second-file-field-large",
        ),
        pytest.param([form_part(b"field%d" % i, b"v") for i in range(3000)], id="3000-parts"),
        pytest.param(
            [form_part(b"file", b"x", b"headers.bin", b"X-H: v\r\n" * 500)], id="500-part-headers"
        ),
        pytest.param(
            [form_part(b"file", b"x", b"big-header.bin", b"X-H: " + b"v" * 1_000_000 + b"\r\n")],
            id="1MB-part-header",
        ),
        pytest.param([form_part(b"sha256", b"0" * 100_000)], id="huge-sha256-field"),
    ],
)
def test_abusive_forms_are_refused_with_400(target: Target, parts: list[bytes]) -> None:
    target.reset()
    started = time.monotonic()
    assert_answered(post_form(target.port, multipart(parts, BOUNDARY)), {400})
    assert time.monotonic() - started < 5
    assert {e.name for e in os.scandir(target.storage) if not e.name.startswith(".")} == {
        "known.bin"
    }
    target.assert_contained()


# -- bugs found -----------------------------------------------------------------------------


def test_range_with_a_huge_number_is_not_a_500(target: Target) -> None:
    """Numbers past Python's 4300-digit int() limit (it used to raise: 500)."""
    for header in ("bytes=0-" + "1" * 5000, "bytes=-" + "1" * 5000, "bytes=" + "1" * 5000 + "-"):
        reply = request(target.port, "GET", "/assets/known.bin", [("Range", header)])
        assert_answered(reply, {200, 206, 416})


def test_put_name_that_is_not_utf8_is_refused(target: Target) -> None:
    """%FF is not UTF-8: 400 (the name used to be decoded lossily to U+FFFD and stored)."""
    target.reset()
    reply = assert_answered(request(target.port, "PUT", "/assets/a%FFb.bin", [bearer(TOKEN)], b"x"))
    assert reply.status == 400, reply
