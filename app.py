"""ASGI entry for ``hypercorn app:app`` from a checkout (settings come from the environment)."""

from release_server.asgi import create_app

app = create_app()
