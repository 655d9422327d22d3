"""The GraphQL syntax release clients send, read into fields (SPEC §8.4): operations with
variable definitions, selection sets, aliases and arguments with literal or ``$variable``
values. Fragments and directives are refused (no release client sends them). Commas are
whitespace, as GraphQL says (githubv4, which gh uses, separates fields with them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Deeper nesting than this is refused, not parsed (no recursion without bound).
MAX_DEPTH = 24
_TOKEN = re.compile(
    r'(?P<skip>[\s,\ufeff]+|#[^\n\r]*)|(?P<string>"(?:\\.|[^"\\\n\r])*")'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z]\w*)"
    r"|(?P<punct>\.\.\.|[!$():=@\[\]{}|&])"
)
#: An operation: its variables' defaults, and its selections.
Operation = tuple[dict[str, Any], tuple["Field", ...]]


class GraphQLError(Exception):
    """A query this server does not answer; the message goes to the client as GitHub's."""


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    alias: str
    args: Mapping[str, Any]
    selections: tuple[Field, ...]


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match:
                raise GraphQLError(f"Parse error on {text[position : position + 10]!r}")
            position = match.end()
            if match.lastgroup != "skip":
                self.tokens.append((str(match.lastgroup), match.group()))
        self.index = 0

    def peek(self, value: str | None = None) -> bool:
        here = self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")
        return here[1] == value if value is not None else here[0] != "end"

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.index >= len(self.tokens):
            raise GraphQLError("Parse error: the query ends too early")
        got_kind, got = self.tokens[self.index]
        if (kind and got_kind != kind) or (value and got != value):
            raise GraphQLError(f"Parse error on {got[:40]!r}: expected {value or kind}")
        self.index += 1
        return got

    def skip(self, value: str) -> bool:
        if self.peek(value):
            self.index += 1
            return True
        return False

    def operations(self) -> dict[str | None, tuple[dict[str, Any], tuple[Field, ...]]]:
        found: dict[str | None, tuple[dict[str, Any], tuple[Field, ...]]] = {}
        while self.peek():
            kind, name, defaults = "query", None, {}
            if not self.peek("{"):
                kind = self.take("name")
                if kind in ("mutation", "subscription", "fragment"):
                    raise GraphQLError(f"This server answers queries only, not a {kind}.")
                if kind != "query":
                    raise GraphQLError(f"Parse error on {kind!r}")
                name = self.take("name") if not self.peek("(") and not self.peek("{") else None
                if self.skip("("):
                    while not self.skip(")"):
                        self.take("punct", "$")
                        variable = self.take("name")
                        self.take("punct", ":")
                        self.type_ref()
                        defaults[variable] = self.value(0) if self.skip("=") else None
            found[name] = (defaults, self.selections(0))
        return found

    def type_ref(self) -> None:
        if self.skip("["):
            self.type_ref()
            self.take("punct", "]")
        else:
            self.take("name")
        self.skip("!")

    def selections(self, depth: int) -> tuple[Field, ...]:
        if depth > MAX_DEPTH:
            raise GraphQLError("The query is nested too deeply.")
        self.take("punct", "{")
        fields = []
        while not self.skip("}"):
            if self.peek("...") or self.peek("@"):
                raise GraphQLError("Fragments and directives are not supported here.")
            alias = name = self.take("name")
            if self.skip(":"):
                name = self.take("name")
            args = {}
            if self.skip("("):
                while not self.skip(")"):
                    key = self.take("name")
                    self.take("punct", ":")
                    args[key] = self.value(depth)
            if self.peek("@"):
                raise GraphQLError("Fragments and directives are not supported here.")
            inner = self.selections(depth + 1) if self.peek("{") else ()
            fields.append(Field(name, alias, args, inner))
        return tuple(fields)

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise GraphQLError("The query is nested too deeply.")
        if self.skip("$"):
            return Variable(self.take("name"))
        if self.skip("["):
            items = []
            while not self.skip("]"):
                items.append(self.value(depth + 1))
            return items
        if self.skip("{"):
            fields = {}
            while not self.skip("}"):
                key = self.take("name")
                self.take("punct", ":")
                fields[key] = self.value(depth + 1)
            return fields
        kind, token = self.tokens[self.index] if self.peek() else ("end", "")
        self.take()
        if kind == "string":
            try:
                return json.loads(token, strict=False)
            except ValueError:
                raise GraphQLError(f"Parse error on {token[:40]!r}: a bad escape") from None
        if kind == "number":
            return float(token) if any(c in token for c in ".eE") else int(token)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(token, token)
        raise GraphQLError(f"Parse error on {token[:40]!r}")


def operations(text: str) -> dict[str | None, Operation]:
    """Every operation of a GraphQL document by name (None: the anonymous one)."""
    return Parser(text).operations()
