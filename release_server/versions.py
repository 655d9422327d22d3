"""Split a file name into its family and its version (SPEC §8.2).

Retention keeps the newest N versions of each *family* of files, so the server has
to see that ``tool-1.2.zip`` and ``tool-1.3.zip`` are two versions of one thing
(family ``tool-*.zip``) while ``tool-linux-x86_64.zip`` is a thing of its own. The
rule: a name's version is its first version-like token, found only where a token
starts (the start of the name or after ``-``, ``_``, ``.``, ``+`` or a space) and
ending where a token ends; the family is the name with that token replaced by ``*``.
If several kinds of token are present, the most version-like kind wins: a dotted
version (``1.2``, ``v0.0.78``, ``1.2.3-rc.1``, ``1.2.3-1``), then a dotted version
glued to a word (``go1.22.0``), then ``v`` plus digits (``v12``), then a date
(``2026-11-29`` or ``20261129``), then a bare number (a build number). Architecture
and platform tokens (``x86_64``, ``amd64``, ``386``, ``manylinux_2_17`` ...) are never
versions, and a version never swallows the extension after it. A name without a
version is a family of its own, so it is never pruned as an "older version".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "NameVersion",
    "VersionKey",
    "family_of",
    "split_version",
    "stable_name",
    "version_key",
]

_SEPARATORS = frozenset("-_.+ ")
_END = r"(?=[-_.+ ]|$)"

# Architecture and platform tokens. Only the ones with a digit at a token start
# (x86_64, 386, manylinux_2_17, 64-bit ...) could be mistaken for a version; the rest
# are listed so that a revision or build part never runs into them.
_ARCH = (
    r"(?:x86[-_]64(?:[-_]?v[1-4])?|x86|x64|x32|amd64(?:[-_]?v[1-4])?|i[3-6]86|[3-6]86"
    r"|ia32|ia64|arm(?:64(?:e|ec|be)?|v[0-9]+[a-z]*|hf|el)?|aarch64(?:[-_]?be)?|aarch32"
    r"|ppc64(?:le)?|ppc|powerpc(?:64)?(?:le)?|s390x?|mips(?:64)?(?:el|le)?|riscv(?:32|64)"
    r"|loong(?:arch)?64|sparc(?:v9|64)?|wasm(?:32|64)?|win32|win64|universal2?"
    r"|(?:32|64)[-_]?bits?|(?:many|musl)linux[0-9]*(?:_[0-9]+)*|macosx?(?:_[0-9]+)+)"
)
_ARCH_TOKEN = re.compile(_ARCH + _END, re.IGNORECASE | re.ASCII)
_NOT_ARCH = rf"(?!{_ARCH}{_END})"

_PRE_WORDS = r"alpha|beta|preview|pre|rc|dev|snapshot|canary|nightly|next|ea"
# A pre-release (or post-release) part after "-", "." or "~": -rc.1, -beta, .dev0, ~rc1.
_LABEL = rf"(?:[-.~](?:{_PRE_WORDS}|post)[0-9]*(?:\.[0-9]+)*)"
# A suffix glued to the numbers: 1.0rc1, 1.0b2, 1.0.post1, 1.1.1w (OpenSSL), 9.6p1 (OpenSSH).
_GLUED = r"(?:(?:alpha|beta|preview|pre|rc|dev|post|[a-z])[0-9]*)"
# Semver build metadata: +build.5, +cu121, +dfsg (later dotted parts need a digit,
# so "+abc.zip" does not take the extension).
_META = rf"(?:\+{_NOT_ARCH}[a-z0-9]+(?:\.(?=[a-z]*[0-9])[a-z0-9]+)*)"
# A Debian/RPM revision: -1, -2ubuntu10, -1ubuntu0.22.04.1, -2+deb12u1, -1~bpo12+1, -1.el9.
_REVISION = (
    rf"(?:-{_NOT_ARCH}[0-9]+"
    rf"(?:[a-z]+[0-9]+|[+~][a-z]*[0-9]+|\.[0-9]+|\.{_NOT_ARCH}[a-z]{{1,8}}[0-9]+(?:_[0-9]+)?)*)"
)
# The numbers of a dotted version, taken whole (possessive): "1.2.3.7z" stops before ".7z".
_DOTTED_CORE = r"(?>[0-9]+(?:\.(?!7z(?![a-z0-9]))[0-9]+)+)"
_NO_MORE_DOTS = r"(?!\.[0-9])"

_FLAGS = re.IGNORECASE | re.ASCII
_DOTTED = re.compile(rf"v?{_DOTTED_CORE}{_GLUED}?{_LABEL}*{_META}?{_REVISION}?{_END}", _FLAGS)
_GLUED_DOTTED = re.compile(rf"{_DOTTED_CORE}{_GLUED}?{_LABEL}*{_META}?{_REVISION}?{_END}", _FLAGS)
_V_NUMBER = re.compile(rf"v[0-9]+{_NO_MORE_DOTS}{_LABEL}*{_META}?{_END}", _FLAGS)
_DATE = re.compile(
    rf"(?:19|20)[0-9]{{2}}(?P<sep>[-_]?)(?:0[1-9]|1[0-2])(?P=sep)(?:0[1-9]|[12][0-9]|3[01])"
    rf"{_NO_MORE_DOTS}{_END}",
    _FLAGS,
)
_NUMBER = re.compile(rf"[0-9]+{_NO_MORE_DOTS}{_LABEL}*{_META}?{_END}", _FLAGS)
_WORD_PREFIX = re.compile(r"[a-z]+(?=[0-9])", _FLAGS)

# Ranks: the lower wins; among equals the leftmost wins.
_RANKED = ((0, _DOTTED), (2, _V_NUMBER), (3, _DATE), (4, _NUMBER))
_GLUED_RANK = 1

_PRERELEASE = re.compile(
    rf"(?<![a-z])(?:{_PRE_WORDS})(?![a-z])|(?<=[0-9])(?:a|b|c)(?=[0-9])", _FLAGS
)


@dataclass(frozen=True, slots=True)
class NameVersion:
    """A file name's family (its name with the version replaced by ``*``) and version."""

    family: str
    version: str | None
    prerelease: bool


def _token_starts(name: str) -> list[int]:
    """Positions where a token starts, except inside a dotted number ("1.2" -> not at 2)."""
    starts = []
    for i in range(len(name)):
        if i and name[i - 1] not in _SEPARATORS:
            continue
        if i >= 2 and name[i - 1] == "." and name[i - 2] in "0123456789":
            continue
        starts.append(i)
    return starts


#: Names and versions whose parse is remembered: retention sorts every package of a listing
#: by version after each upload (with 1,000 packages, a fifth of the GIL during uploads).
PARSED_CACHE = 16384


@functools.lru_cache(maxsize=PARSED_CACHE)
def split_version(name: str) -> NameVersion:
    """Return the family and version of ``name``; the family is ``name`` when it has none."""
    starts = _token_starts(name)
    forbidden = []
    for i in starts:
        match = _ARCH_TOKEN.match(name, i)
        if match:
            forbidden.append(match.span())

    best: tuple[int, int, int] | None = None  # (rank, start, end)

    def consider(rank: int, start: int, end: int) -> None:
        nonlocal best
        if any(start < f_end and f_start < end for f_start, f_end in forbidden):
            return
        if best is None or (rank, start) < best[:2]:
            best = (rank, start, end)

    for i in starts:
        for rank, pattern in _RANKED:
            match = pattern.match(name, i)
            if match:
                consider(rank, i, match.end())
        word = _WORD_PREFIX.match(name, i)
        if word:
            match = _GLUED_DOTTED.match(name, word.end())
            if match:
                consider(_GLUED_RANK, word.end(), match.end())

    if best is None:
        return NameVersion(family=name, version=None, prerelease=False)
    _, start, end = best
    version = name[start:end]
    return NameVersion(
        family=f"{name[:start]}*{name[end:]}",
        version=version,
        prerelease=_PRERELEASE.search(version) is not None,
    )


def family_of(name: str) -> str:
    """The family of ``name``: the name with its version replaced by ``*``, or the name."""
    return split_version(name).family


def stable_name(name: str) -> str | None:
    """The name with its version left out, for links that always mean the newest file of
    the family: ``tool-1.2.zip`` -> ``tool.zip``, ``tool_1.2_linux.tar.gz`` ->
    ``tool_linux.tar.gz``. The separator before the version goes with it (the one after,
    when the version starts the name). None when the name has no version, or when nothing
    but an extension would be left (``v1.2.tar.gz``)."""
    split = split_version(name)
    if split.version is None:
        return None
    before, _, after = split.family.partition("*")
    if before[-1:] in _SEPARATORS:
        before = before[:-1]
    elif not before:
        if after[:1] not in ("-", "_", "+", " ") or not after[1:]:
            return None
        after = after[1:]
    return before + after


# One part of a version key: (kind, size, text). Kinds order a pre-release word (0)
# below the end of the version (1), below any other word (2), below a number (3).
VersionKey = tuple[tuple[tuple[int, int, str], ...], str]

_PRE_ORDER = {
    "dev": 0, "snapshot": 0, "nightly": 0, "canary": 0,
    "alpha": 1, "a": 1, "ea": 1,
    "beta": 2, "b": 2,
    "pre": 3, "preview": 3, "next": 3,
    "rc": 4, "c": 4,
}  # fmt: skip
_VERSION_PARTS = re.compile(r"[0-9]+|[a-z]+", re.ASCII)
_END_PART = (1, 0, "")


@functools.lru_cache(maxsize=PARSED_CACHE)
def version_key(version: str) -> VersionKey:
    """A sort key for versions, semver-like; total and never raising, for any string.

    Numbers compare as numbers (``1.2.10`` > ``1.2.9``), a pre-release is lower than its
    release (``1.0.0-rc.1`` < ``1.0.0``; dev < alpha < beta < pre < rc), anything else
    after the numbers is higher (``1.2.3-1`` > ``1.2.3``, ``1.1.1w`` > ``1.1.1``), and a
    leading ``v`` is ignored. Equal parts fall back to the text itself, so distinct
    versions never tie.
    """
    text = version.lower()
    if text[:1] == "v" and text[1:2].isdigit():
        text = text[1:]
    tokens = _VERSION_PARTS.findall(text)
    parts: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        if token.isdigit():
            digits = token.lstrip("0") or "0"
            parts.append((3, len(digits), digits))  # no int(): huge numbers cannot raise
            continue
        order = _PRE_ORDER.get(token)
        if order is not None and len(token) == 1:
            # a/b/c are PEP 440 pre-releases only between numbers (1.0a1); 1.1.1c is a
            # letter release (OpenSSL).
            glued = 0 < index < len(tokens) - 1 and tokens[index + 1].isdigit()
            order = order if glued and tokens[index - 1].isdigit() else None
        parts.append((0, order, token) if order is not None else (2, 0, token))
    parts.append(_END_PART)
    return tuple(parts), version
