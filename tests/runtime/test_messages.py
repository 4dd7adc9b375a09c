"""A handshake-era POST body parsed once (`web/messages.py`): what is a request, a notification, an answer,
and which JSON-RPC error anything else gets."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_runtime.web.messages import BadMessage, parse


def body(message: Any) -> bytes:
    return json.dumps(message).encode()


def test_a_request_is_known_by_its_method_and_id() -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
    assert (incoming.method, incoming.id, incoming.answer) == ("tools/list", 7, None)
    assert incoming.is_request and not incoming.is_answer
    assert incoming.request_key == "7"


def test_a_request_key_is_the_id_as_a_string_so_1_and_quoted_1_are_one_request() -> None:
    as_number = parse(body({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    as_string = parse(body({"jsonrpc": "2.0", "id": "1", "method": "ping"}))
    assert as_number.id == 1 and as_string.id == "1"
    assert as_number.request_key == as_string.request_key == "1"


def test_a_request_is_taken_with_its_params_unvalidated_beyond_its_shape() -> None:
    """The handler validates a request's params; the router needs its method, id and params object."""
    incoming = parse(body({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": 5}}))
    assert (incoming.method, incoming.id, incoming.params) == ("tools/call", "a", {"name": 5})


@pytest.mark.parametrize("params", [5, "x", [1], True])
def test_params_that_are_not_an_object_are_a_bad_message(params: object) -> None:
    with pytest.raises(BadMessage) as refused:
        parse(body({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": params}))
    assert refused.value.code == types.INVALID_REQUEST


def test_a_notification_has_a_method_and_no_id() -> None:
    incoming = parse(body({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    assert (incoming.method, incoming.id) == ("notifications/initialized", None)
    assert not incoming.is_request and not incoming.is_answer
    assert incoming.request_key is None


@pytest.mark.parametrize("request_id", [None, True, 1.5, [1], {"a": 1}], ids=repr)
def test_a_method_with_an_id_that_is_not_int_or_string_is_never_a_request(request_id: object) -> None:
    try:
        incoming = parse(body({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}))
    except BadMessage as refused:
        assert refused.code == types.INVALID_REQUEST
        return
    assert not incoming.is_request and incoming.request_key is None


def test_a_result_is_an_answer() -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": 12, "result": {"action": "accept"}}))
    assert incoming.is_answer and not incoming.is_request
    assert (incoming.method, incoming.id) == (None, 12)
    assert isinstance(incoming.answer, types.JSONRPCResponse)
    assert incoming.answer.result == {"action": "accept"}


def test_an_error_is_an_answer() -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": "x", "error": {"code": -1, "message": "declined"}}))
    assert incoming.is_answer and incoming.id == "x"
    assert isinstance(incoming.answer, types.JSONRPCError)
    assert (incoming.answer.error.code, incoming.answer.error.message) == (-1, "declined")


def test_an_answer_whose_result_mentions_method_is_still_an_answer() -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": 3, "result": {"content": {"method": "tools/call"}}}))
    assert incoming.is_answer and incoming.method is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"jsonrpc": "2.0", "id": 1, "method": "x"} trailing'],
    ids=["empty", "cut", "words", "not-utf8", "trailing"],
)
def test_what_is_not_json_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(BadMessage) as refused:
        parse(raw)
    assert refused.value.code == types.PARSE_ERROR
    assert refused.value.message.startswith("Parse error")


INVALID = {
    "batch": [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}],
    "empty-batch": [],
    "null": None,
    "number": 5,
    "string": "ping",
    "empty-object": {},
    "no-version": {"id": 1, "method": "ping"},
    "version-1.0": {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    "method-not-a-string": {"jsonrpc": "2.0", "id": 1, "method": 5},
    "id-only": {"jsonrpc": "2.0", "id": 1},
    "answer-without-version": {"id": 5, "result": {}},
    "answer-id-true": {"jsonrpc": "2.0", "id": True, "result": {}},
    "answer-id-list": {"jsonrpc": "2.0", "id": [5], "result": {}},
    "answer-id-object": {"jsonrpc": "2.0", "id": {"a": 1}, "error": {"code": 1, "message": "m"}},
    "error-not-an-object": {"jsonrpc": "2.0", "id": 5, "error": "boom"},
    "error-without-message": {"jsonrpc": "2.0", "id": 5, "error": {"code": 1}},
    "result-not-an-object": {"jsonrpc": "2.0", "id": 5, "result": 7},
}


@pytest.mark.parametrize("message", INVALID.values(), ids=INVALID.keys())
def test_json_that_is_not_one_json_rpc_message_is_an_invalid_request(message: Any) -> None:
    with pytest.raises(BadMessage) as refused:
        parse(body(message))
    assert refused.value.code == types.INVALID_REQUEST
    assert refused.value.message.startswith("Invalid JSON-RPC 2.0 message")
    assert len(refused.value.message) < 400  # the problems are summed up, not dumped whole


# Properties (no per-example deadline: a busy test machine is not a slow parser)

PROPERTY = settings(deadline=None)

ids = st.integers() | st.text()
methods = st.text()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_a_bad_message(raw: bytes) -> None:
    try:
        parse(raw)
    except BadMessage as refused:
        assert refused.code in (types.PARSE_ERROR, types.INVALID_REQUEST)


@PROPERTY
@given(json_values)
def test_any_json_parses_or_is_an_invalid_request(value: Any) -> None:
    try:
        parse(body(value))
    except BadMessage as refused:
        assert refused.code == types.INVALID_REQUEST


@PROPERTY
@given(
    st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "id": json_values, "method": json_values | methods},
        optional={"result": json_values, "error": json_values, "params": json_values},
    )
)
def test_any_message_shaped_object_parses_or_is_an_invalid_request(message: dict[str, Any]) -> None:
    try:
        incoming = parse(body(message))
    except BadMessage as refused:
        assert refused.code == types.INVALID_REQUEST
        return
    if incoming.is_request:
        assert incoming.id == message["id"] and incoming.method == message["method"]


@PROPERTY
@given(ids, methods, st.dictionaries(st.text(), json_values, max_size=3))
def test_a_valid_request_round_trips_its_id_and_method(request_id: int | str, method: str, params: Any) -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    assert (incoming.method, incoming.id) == (method, request_id)
    assert incoming.is_request and incoming.request_key == str(request_id)


@PROPERTY
@given(methods)
def test_a_valid_notification_round_trips_its_method(method: str) -> None:
    incoming = parse(body({"jsonrpc": "2.0", "method": method}))
    assert (incoming.method, incoming.id, incoming.is_request) == (method, None, False)


@PROPERTY
@given(ids, st.dictionaries(st.text(), json_values, max_size=3))
def test_a_valid_result_round_trips_its_id(request_id: int | str, result: dict[str, Any]) -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": request_id, "result": result}))
    assert incoming.is_answer and incoming.id == request_id
    assert isinstance(incoming.answer, types.JSONRPCResponse) and incoming.answer.id == request_id


@PROPERTY
@given(ids, st.integers(min_value=-(2**31), max_value=2**31 - 1), st.text())
def test_a_valid_error_round_trips_its_id(request_id: int | str, code: int, text: str) -> None:
    incoming = parse(body({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}}))
    assert incoming.is_answer and incoming.id == request_id
    assert isinstance(incoming.answer, types.JSONRPCError) and incoming.answer.error.code == code
