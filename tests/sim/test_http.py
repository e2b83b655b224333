"""HTTP beside the websocket: POST /info and /exchange over real HTTP (http.client).

Each status code the live API uses is provoked here, and answers are compared with what the
same request gets as a websocket post.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from typing import Any

import pytest
import websockets

from hip3.sim.server import ConnectionLimits
from tests.sim.doc_client import limit_order, sign_l1

JSON = {"Content-Type": "application/json"}


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.raw = response.read()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        assert self.content_type == "application/json", self.content_type
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        assert self.content_type.startswith("text/plain"), self.content_type
        return self.raw.decode()


def _request(
    port: int,
    path: str,
    body: bytes | str | None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body, JSON if headers is None else headers)
        return Reply(conn.getresponse())
    finally:
        conn.close()


async def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return await asyncio.to_thread(_request, port, path, data, headers)


async def call(port: int, method: str, path: str) -> Reply:
    return await asyncio.to_thread(_request, port, path, None, {}, method)


def signed(private_key: str, action: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    nonce = envelope.pop("nonce", time.time_ns() // 1_000_000)
    body = {
        "action": action,
        "nonce": nonce,
        "signature": sign_l1(private_key, action, nonce),
        "vaultAddress": None,
        "expiresAfter": None,
    }
    body.update(envelope)
    return body


# --- 200 ---------------------------------------------------------------------------------


async def test_info_answers_the_bare_result_as_json_like_a_ws_post(sim, connect) -> None:
    port = sim.server.port
    reply = await post(port, "/info", {"type": "meta", "dex": "xyz"})
    assert reply.status == 200
    over_ws = await (await connect(sim)).post("info", {"type": "meta", "dex": "xyz"})
    assert over_ws["payload"]["data"] == reply.json()
    assert reply.json()["universe"][0]["name"] == "xyz:AAA"


async def test_info_accepts_json_suffix_content_types_and_ignores_unknown_fields(sim) -> None:
    headers = {"Content-Type": "application/vnd.example+json; charset=utf-8"}
    reply = await post(sim.server.port, "/info", {"type": "allMids", "extra": 1}, headers)
    assert reply.status == 200
    assert set(reply.json()) == {"BTC", "ETH"}


async def test_trailing_bytes_after_the_json_value_are_ignored(sim) -> None:
    reply = await post(sim.server.port, "/info", '{"type":"allMids","dex":"xyz"} trailing')
    assert reply.status == 200 and "xyz:AAA" in reply.json()


async def test_exchange_order_answers_status_object_and_state_changes(sim) -> None:
    user, key = sim.account
    action = {"type": "order", "orders": [limit_order(110000, True, "90", "1")], "grouping": "na"}
    reply = await post(sim.server.port, "/exchange", signed(key, action))
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "ok" and body["response"]["type"] == "order"
    oid = body["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in sim.exchange.open_orders(user)] == [oid]


async def test_business_refusal_is_200_with_status_err(sim) -> None:
    _user, key = sim.account
    action = {"type": "order", "orders": [limit_order(110000, True, "90", "1")], "grouping": "na"}
    body = signed(key, action)
    first = await post(sim.server.port, "/exchange", body)
    assert first.status == 200
    replay = await post(sim.server.port, "/exchange", body)
    assert replay.status == 200
    assert replay.json() == {
        "status": "err",
        "response": f"Invalid nonce: duplicate nonce {body['nonce']}",
    }


async def test_same_refusal_over_http_and_ws_post(sim, connect) -> None:
    _user, key = sim.account
    action = {"type": "cancel", "cancels": [{"a": 110000, "o": 1}]}
    over_http = (await post(sim.server.port, "/exchange", signed(key, action))).json()
    client = await connect(sim)
    over_ws = await client.post("action", signed(key, action, nonce=time.time_ns() // 10**6 + 7))
    assert over_ws == {"type": "action", "payload": over_http}
    assert over_http["response"]["data"]["statuses"][0]["error"].startswith("Order was never")


# --- 400, 415, 422 -----------------------------------------------------------------------


async def test_invalid_json_is_400_plain_text_and_changes_nothing(sim) -> None:
    user, _ = sim.account
    reply = await post(sim.server.port, "/exchange", b'{"action": ')
    assert reply.status == 400
    assert reply.text.startswith("Failed to parse the request body as JSON")
    assert sim.exchange.open_orders(user) == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/+json", None]
)
async def test_wrong_content_type_is_415(sim, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = await post(sim.server.port, "/info", {"type": "allMids"}, headers)
    assert reply.status == 415
    assert reply.text == "Expected request with `Content-Type: application/json`"


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/info", {"type": "noSuchRequest"}, "noSuchRequest"),
        ("/info", [1, 2], "object"),
        ("/exchange", {}, "action"),
        ("/exchange", "EXTRA_ENVELOPE", "unknownField"),
        ("/exchange", "EXTRA_ACTION", "unknownField"),
        ("/exchange", "BAD_NUMBER", "1e2"),
        ("/exchange", "NUMBER_AS_JSON_NUMBER", "must be a string"),
        ("/exchange", "SHORT_CLOID", "cloid"),
        ("/exchange", "UNKNOWN_ACTION", "frobnicate"),
    ],
)
async def test_schema_errors_are_422_plain_text_naming_the_problem(sim, path, body, named) -> None:
    user, key = sim.account
    order = limit_order(110000, True, "90", "1")
    if body == "EXTRA_ENVELOPE":
        body = signed(key, {"type": "noop"}, unknownField=1)
    elif body == "EXTRA_ACTION":
        body = signed(key, {"type": "noop", "unknownField": 1})
    elif body == "BAD_NUMBER":
        body = signed(key, {"type": "order", "orders": [{**order, "p": "1e2"}], "grouping": "na"})
    elif body == "NUMBER_AS_JSON_NUMBER":
        body = signed(key, {"type": "order", "orders": [{**order, "s": 1}], "grouping": "na"})
    elif body == "SHORT_CLOID":
        body = signed(key, {"type": "order", "orders": [{**order, "c": "0x12"}], "grouping": "na"})
    elif body == "UNKNOWN_ACTION":
        body = signed(key, {"type": "frobnicate"})
    reply = await post(sim.server.port, path, body)
    assert reply.status == 422
    text = reply.text
    assert text.startswith("Failed to deserialize the JSON body into the target type")
    assert "\n" not in text.strip() and named in text
    assert sim.exchange.open_orders(user) == []


# --- 429 ---------------------------------------------------------------------------------


async def test_per_ip_weight_limit_is_429_null_and_refusals_cost_nothing(make_sim) -> None:
    # 10 weight per window: five light requests (2 each) fit, the sixth does not.
    sim = await make_sim(limits=ConnectionLimits(http_weight_per_window=10, http_window_s=3600))
    port = sim.server.port
    for _ in range(5):
        assert (await post(port, "/info", {"type": "allMids"})).status == 200
    refused = await post(port, "/info", {"type": "allMids"})
    assert refused.status == 429
    assert refused.json() is None
    assert sim.server.ip_limiter.used("127.0.0.1") == 10
    # A websocket post is not limited by the HTTP weight.
    async with websockets.connect(sim.ws_url) as ws:
        request = {"type": "info", "payload": {"type": "allMids"}}
        await ws.send(json.dumps({"method": "post", "id": 1, "request": request}))
        assert json.loads(await ws.recv())["data"]["response"]["type"] == "info"


async def test_heavy_requests_weigh_more(make_sim) -> None:
    sim = await make_sim(limits=ConnectionLimits(http_weight_per_window=25, http_window_s=3600))
    port = sim.server.port
    user, _ = sim.account
    assert (await post(port, "/info", {"type": "userFees", "user": user})).status == 200  # 20
    assert (await post(port, "/info", {"type": "l2Book", "coin": "BTC"})).status == 200  # 2
    assert (await post(port, "/info", {"type": "perpDexs"})).status == 429  # 20 more


# --- 500 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"nSigFigs": 7},
        {"nSigFigs": 1},
        {"nSigFigs": 5, "mantissa": 1},
        {"nSigFigs": 4, "mantissa": 2},
    ],
)
async def test_l2book_outside_the_allowed_aggregation_is_500_null(sim, params) -> None:
    reply = await post(sim.server.port, "/info", {"type": "l2Book", "coin": "BTC", **params})
    assert reply.status == 500
    assert reply.json() is None


async def test_l2book_of_an_unknown_coin_is_200_null(sim) -> None:
    reply = await post(sim.server.port, "/info", {"type": "l2Book", "coin": "xyz:NOPE"})
    assert reply.status == 200 and reply.json() is None


async def test_l2book_inside_the_allowed_aggregation_is_200(sim) -> None:
    sim.exchange.replace_maker_quotes(
        "BTC", "0x" + "ab" * 20, [("60001", "1"), ("60003", "2")], [("60100", "1")]
    )
    payload = {"type": "l2Book", "coin": "BTC", "nSigFigs": 4}
    book = (await post(sim.server.port, "/info", payload)).json()
    assert book["levels"][0] == [{"px": "60000", "sz": "3", "n": 2}]
    assert book["levels"][1] == [{"px": "60100", "sz": "1", "n": 1}]


# --- routing, framing, keep-alive --------------------------------------------------------


async def test_other_paths_and_methods(sim) -> None:
    port = sim.server.port
    missing = await call(port, "GET", "/nothing")
    assert missing.status == 404 and "/info" in missing.text
    wrong = await call(port, "GET", "/info")
    assert wrong.status == 405 and wrong.headers["allow"] == "POST"
    ws_post = await post(port, "/ws", {"type": "allMids"})
    assert ws_post.status == 405 and ws_post.headers["allow"] == "GET"


async def test_keep_alive_serves_several_requests_on_one_connection(sim) -> None:
    def run() -> list[tuple[int, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", sim.server.port, timeout=5)
        out = []
        for body in ('{"type":"allMids"}', "{bad", '{"type":"perpDexs"}'):
            conn.request("POST", "/info", body, JSON)
            response = conn.getresponse()
            out.append((response.status, response.read()))
        sock = conn.sock
        conn.close()
        assert sock is not None
        return out

    answers = await asyncio.to_thread(run)
    assert [status for status, _ in answers] == [200, 400, 200]
    assert json.loads(answers[2][1])[1]["name"] == "xyz"


async def test_pipelined_requests_are_answered_in_order_with_exact_lengths(sim) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.server.port)
    bodies = [b'{"type":"allMids"}', b'{"type":"allMids","dex":"xyz"}', b"[]"]
    raw = b"".join(
        b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in bodies
    )
    writer.write(raw[:37])  # a request split across reads
    await writer.drain()
    writer.write(raw[37:])
    answers = []
    for _ in bodies:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode().split("\r\n")
        length = int(next(x for x in lines if x.lower().startswith("content-length")).split(":")[1])
        answers.append((lines[0], await reader.readexactly(length)))
    writer.close()
    assert [line for line, _ in answers] == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 422 Unprocessable Entity",
    ]
    assert "BTC" in json.loads(answers[0][1]) and "xyz:AAA" in json.loads(answers[1][1])


async def test_connection_close_is_honoured(sim) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.server.port)
    body = b'{"type":"allMids"}'
    writer.write(
        b"POST /info HTTP/1.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    data = await asyncio.wait_for(reader.read(), 5)  # returns at EOF: the server closed
    writer.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


async def test_post_without_content_length_is_411(sim) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.server.port)
    writer.write(b"POST /info HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.startswith(b"HTTP/1.1 411 ")


async def test_websocket_still_upgrades_on_the_same_port(sim) -> None:
    assert (await post(sim.server.port, "/info", {"type": "allMids"})).status == 200
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(json.dumps({"method": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"channel": "pong"}


async def test_stop_cuts_idle_http_connections(make_sim) -> None:
    sim = await make_sim()
    sock = socket.create_connection(("127.0.0.1", sim.server.port))
    sock.sendall(b"POST /info HTTP/1.1\r\nContent-Type: application/json\r\nContent-Le")
    await asyncio.sleep(0.05)
    await sim.stop()
    sock.settimeout(3)
    assert await asyncio.to_thread(sock.recv, 100) == b""
    sock.close()


async def test_single_modify_answers_default_and_a_gone_target_is_a_whole_action_error(
    sim,
) -> None:
    user, key = sim.account
    port = sim.server.port
    placed = await post(
        port,
        "/exchange",
        signed(
            key,
            {"type": "order", "orders": [limit_order(110000, True, "20", "1")], "grouping": "na"},
        ),
    )
    oid = placed.json()["response"]["data"]["statuses"][0]["resting"]["oid"]
    modify = {"type": "modify", "oid": oid, "order": limit_order(110000, True, "21", "1")}
    assert (await post(port, "/exchange", signed(key, modify))).json() == {
        "status": "ok",
        "response": {"type": "default"},
    }
    [order] = sim.exchange.open_orders(user)
    assert order["limitPx"] == "21" and order["oid"] != oid
    gone = await post(port, "/exchange", signed(key, modify, nonce=time.time_ns() // 10**6 + 5))
    assert gone.json() == {"status": "err", "response": "Cannot modify canceled or filled order"}


async def test_info_takes_addresses_without_0x_and_in_upper_case(sim) -> None:
    user, _ = sim.account
    port = sim.server.port
    canonical = (await post(port, "/info", {"type": "clearinghouseState", "user": user})).json()
    for spelling in (user[2:], "0x" + user[2:].upper(), user[2:].upper()):
        reply = await post(port, "/info", {"type": "clearinghouseState", "user": spelling})
        assert reply.status == 200
        answer = reply.json()
        assert answer["marginSummary"] == canonical["marginSummary"]
    bad = await post(port, "/info", {"type": "clearinghouseState", "user": "0x1234"})
    assert bad.status == 422 and "40-hex-digit address" in bad.text


async def test_body_over_the_frame_limit_is_413_and_the_connection_closes(make_sim) -> None:
    sim = await make_sim(limits=ConnectionLimits(max_frame_bytes=64))
    reply = await post(sim.server.port, "/info", {"type": "allMids", "pad": "x" * 100})
    assert reply.status == 413 and "64 bytes" in reply.text
    assert reply.headers["connection"] == "close"
