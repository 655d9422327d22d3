"""logs.py: the access line written directly is the line logging would write."""

from __future__ import annotations

import json
import logging

import pytest

from release_server.logs import access_logger, configure_logging, log_event, log_request


def test_the_direct_access_line_is_the_logged_one(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    engine = [logging.getLogger(name) for name in ("hypercorn.error", "hypercorn.access")]
    saved = (root.handlers[:], root.level, [logger.filters[:] for logger in engine])
    try:
        configure_logging("info", ("secret-token-0123456789",))
        fields: dict[str, object] = {
            "method": "GET", "path": "/latest?t=secret-token-0123456789", "status": 304,
            "bytes": 0, "duration_ms": 0.12, "client": None, "query": "é\u2028",
        }  # fmt: skip
        log_event(access_logger, "request", **fields)
        log_request(fields)
        logged, direct = capsys.readouterr().out.splitlines()
        assert "secret-token" not in logged and "\u2028" not in logged
        without_ts = [{k: v for k, v in json.loads(line).items() if k != "ts"}
                      for line in (logged, direct)]  # fmt: skip
        assert without_ts[0] == without_ts[1]
        assert list(json.loads(direct)) == list(json.loads(logged))  # same order of fields
        configure_logging("warning")
        log_request(fields)
        assert capsys.readouterr().out == ""
    finally:
        root.handlers[:], root.level, filters = saved
        for logger, kept in zip(engine, filters, strict=True):
            logger.filters = kept
