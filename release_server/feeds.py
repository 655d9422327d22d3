"""The atom feed of a repository's releases, as github.com serves ``/{o}/{r}/releases.atom``
(electron-updater's ``github`` provider reads it to find the newest version: it takes each
entry's tag from the ``/releases/tag/{tag}`` link). Built with ElementTree, so every name
is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree

from .github import Links, ReleaseView
from .package import iso_utc

ATOM = "http://www.w3.org/2005/Atom"


def releases_feed(repository: str, views: Sequence[ReleaseView], links: Links) -> bytes:
    """The feed of ``views`` (newest first; drafts already left out)."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed", {"xml:lang": "en-US"})
    _text(feed, "id", f"tag:release-server,2008:{repository}/releases")
    page = f"{links.root}/{links.repository}/releases"
    for kind, rel, href in (("text/html", "alternate", page),
                            ("application/atom+xml", "self", f"{page}.atom")):  # fmt: skip
        ElementTree.SubElement(feed, f"{{{ATOM}}}link", {"type": kind, "rel": rel, "href": href})
    _text(feed, "title", f"Release notes from {repository.split('/')[1]}")
    _text(feed, "updated", iso_utc(views[0].created_ns) if views else iso_utc(0))
    for view in views:
        entry = ElementTree.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"tag:release-server,2008:Repository/{repository}/{view.tag}")
        _text(entry, "updated", iso_utc(view.created_ns))
        ElementTree.SubElement(
            entry, f"{{{ATOM}}}link",
            {"rel": "alternate", "type": "text/html", "href": links.html(view.tag)},
        )  # fmt: skip
        _text(entry, "title", view.name or view.tag)
        _text(entry, "content", view.body, type="html")
        author = ElementTree.SubElement(entry, f"{{{ATOM}}}author")
        _text(author, "name", "release-server")
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _text(parent: ElementTree.Element, tag: str, text: str, **attributes: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes).text = text
