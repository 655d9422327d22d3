"""release-server: a small, self-hosted server for release packages."""

__version__ = "0.1.0"
