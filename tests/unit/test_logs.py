"""logs.py: the access line written directly is the line logging would write."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest

from release_server.logs import access_logger, configure_logging, log_event, log_request


@pytest.fixture
def our_logging() -> Iterator[None]:
    """configure_logging for one test; the logging set-up as it was afterwards."""
    root = logging.getLogger()
    engine = [logging.getLogger(name) for name in ("hypercorn.error", "hypercorn.access")]
    saved = (root.handlers[:], root.level, [logger.filters[:] for logger in engine])
    try:
        yield
    finally:
        root.handlers[:], root.level, filters = saved
        for logger, kept in zip(engine, filters, strict=True):
            logger.filters = kept


@pytest.mark.usefixtures("our_logging")
def test_the_direct_access_line_is_the_logged_one(capsys: pytest.CaptureFixture[str]) -> None:
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


@pytest.mark.usefixtures("our_logging")
def test_access_lines_wait_for_the_end_of_the_loop_turn_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In a running loop, access lines are written together at the end of the turn; a
    record logged meanwhile writes them first, so lines keep their order."""
    configure_logging("info")

    async def serve() -> None:
        log_request({"path": "/a"})
        log_request({"path": "/b"})
        assert capsys.readouterr().out == ""  # gathered, not yet written
        log_event(logging.getLogger("release_server"), "an event")
        log_request({"path": "/c"})
        await asyncio.sleep(0)  # the end of this turn

    asyncio.run(serve())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("path", line["msg"]) for line in lines] == ["/a", "/b", "an event", "/c"]
