"""The one place that decides whether a string may be a package name (or a path segment)."""

from .errors import InvalidName

MAX_NAME_BYTES = 255
#: Bidirectional controls (``evil\u202epiz.exe`` shows as ``evilexe.zip``) and line
#: separators: invisible, and they change what a name appears to be.
_DECEPTIVE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


def name_problem(name: str) -> str | None:
    """Return why ``name`` is not a valid package name, or None when it is valid."""
    if not name:
        return "the file name is empty"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return f"the file name is {len(encoded)} bytes long; the limit is {MAX_NAME_BYTES}"
    if name in (".", ".."):
        return f"'{name}' is not a file name"
    if name.startswith("."):
        return "the file name starts with '.'; hidden names are reserved for the server"
    if "/" in name or "\\" in name:
        return "the file name contains a path separator ('/' or '\\'); send one path segment"
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in name):
        return "the file name contains a NUL or control character"
    if any(char in _DECEPTIVE for char in name):
        return "the file name contains a bidirectional control or line separator"
    return None


def check_name(name: str) -> str:
    """Return ``name`` unchanged, or raise InvalidName saying what is wrong with it."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidName(
            f"Invalid file name: {problem}. Use 1-255 bytes of UTF-8 without '/', '\\', "
            "control characters, bidirectional controls or a leading '.'."
        )
    return name
