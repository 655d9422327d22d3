"""Constant-time bearer-token check. The token itself never leaves this module's caller."""

import hmac

from .errors import Unauthorized


def check_bearer(authorization: str | None, token: str) -> None:
    """Raise Unauthorized unless ``authorization`` is ``Bearer <token>`` (or GitHub's
    ``token <token>``) for the configured token."""
    if not token:
        raise Unauthorized(
            "Writes are disabled: no AUTH_TOKEN is configured on the server. "
            "Set AUTH_TOKEN (or AUTH_TOKEN_FILE) and restart it."
        )
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() not in ("bearer", "token") or not credentials.strip():
        raise Unauthorized(
            "Send the upload token as 'Authorization: Bearer <token>' (or GitHub's "
            "'Authorization: token <token>')."
        )
    if not hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8")):
        raise Unauthorized("The bearer token is not valid; check the token you send.")
