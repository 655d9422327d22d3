"""Small builders shared by the in-process unit tests."""

from release_server.package import Package


def pkg(name: str, mtime: int) -> Package:
    return Package(name, 1, mtime, "0" * 64)
