"""The one entry point of a request, whatever carried it: a websocket `post` or HTTP POST.

A websocket post `{"type": "info"|"action", "payload": P}` and an HTTP `POST /info` or
`POST /exchange` with body P are the same request. `RequestGateway.submit` parses P's kind,
dispatches it to the exchange core and builds one `Answer` that carries every form the
transports need: the HTTP status and body, and the websocket post `response` object.

How the live API answers (HTTP facts from the exchange's docs and public captures):

- 200 and JSON for everything the exchange parsed, including refusals: an action the
  exchange refuses is `{"status": "err", "response": text}` with status 200.
- 422 and the plain text "Failed to deserialize the JSON body into the target type" for a
  body that does not fit the schema (unknown type, missing or extra fields, bad numbers).
  The simulator appends what was wrong after a colon; the live answer carries no detail.
- 500 and a `null` body for some parameter combinations the live server fails on.
- Over a websocket post, a non-200 answer becomes `{"type": "error", "payload": text}`, with
  one exception kept for the bot's tests: an action body that does not fit the schema is
  answered as the exchange's own whole-action error `{"status": "err", ...}`.

Where the simulator's answer differs from a live one, or invents a text, see
`hip3.sim.texts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hip3.sim.info import InfoError, InfoServerError
from hip3.sim.wire import DESERIALIZE

log = logging.getLogger(__name__)

KINDS = ("info", "action")


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's answer in every transport's form."""

    status: int  # the HTTP status the live API would use
    body: Any  # HTTP body: JSON value for 200, plain text for 4xx, None (`null`) otherwise
    ws: dict[str, Any]  # the websocket post `response` object

    @property
    def is_json(self) -> bool:
        """Whether the HTTP body is JSON (200, and the `null` of 429 and 500)."""
        return self.status == 200 or self.body is None


def post_error(text: str) -> dict[str, Any]:
    """The websocket post `response` of a request the server could not handle."""
    return {"type": "error", "payload": text}


class RequestGateway:
    """Parse, dispatch and answer a request for any transport.

    Hook for block timing: `submit` is the single point every request passes through, in
    arrival order, before the exchange sees it; the answer is handed to `reply`, which may be
    called later than `submit` returns. A timing model replaces `submit`'s body (or wraps the
    gateway) to hold a request until its block executes and to call `reply` once the block
    is committed. Transports never call the exchange directly and never assume `reply` runs
    synchronously: the websocket server counts a post as in flight until its reply, and the
    HTTP server keeps the connection's response order.
    """

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange

    def submit(self, kind: str, payload: Any, reply: Callable[[Answer], None]) -> None:
        """Answer one request of `kind` ("info" or "action") through `reply`."""
        reply(self.answer(kind, payload))

    def answer(self, kind: str, payload: Any) -> Answer:
        """The answer to one request, now (no timing)."""
        if kind == "action":
            return self._action(payload)
        if kind == "info":
            return self._info(payload)
        text = f"request type must be 'info' or 'action', got {kind!r}"
        return Answer(422, text, post_error(text))

    def _action(self, payload: Any) -> Answer:
        status, result = self.exchange.actions.answer(payload)
        if status == 200:
            return Answer(200, result, {"type": "action", "payload": result})
        # A request the server cannot take (over HTTP a 422 or 500 without a JSON answer) comes
        # back on a websocket post as an `error` response, not as an action answer (the API's
        # post-request page; its exact text is not documented, so the HTTP text is reused).
        if status == 422:
            return Answer(422, result["response"], post_error(result["response"]))
        return Answer(500, None, post_error(result["response"]))

    def _info(self, payload: Any) -> Answer:
        try:
            data = self.exchange.info(payload)
        except InfoServerError as exc:
            return Answer(500, None, post_error(str(exc)))
        except InfoError as exc:
            return Answer(422, f"{DESERIALIZE}: {exc}", post_error(str(exc)))
        except Exception:  # a bug in one request must not take the server down
            log.exception("exchange failed on an info request")
            return Answer(500, None, post_error("Internal error while handling the info request"))
        info_type = payload.get("type") if isinstance(payload, dict) else None
        return Answer(200, data, {"type": "info", "payload": {"type": info_type, "data": data}})
