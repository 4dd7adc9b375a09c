"""What a Redis failure means to a client: 503 with Retry-After when Redis says "not now", a bug otherwise."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from mcp_runtime.redis_store.errors import as_unavailable


@pytest.mark.parametrize(
    "reply",
    [
        "NOREPLICAS Not enough good replicas to write.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script.",
    ],
)
@pytest.mark.parametrize(
    "form",
    [
        "{reply}",
        "Command # 1 (EVALSHA abc 2 k1 k2 1) of pipeline caused error: {reply}",
        "Command # 1 (EVALSHA abc 2 k1 k2 1) of pipeline caused error: ('{reply}',)",
    ],
)
def test_a_refusal_that_means_not_now_is_unavailable_inside_a_pipeline_too(reply: str, form: str) -> None:
    mapped = as_unavailable(ResponseError(form.format(reply=reply)))
    assert mapped is not None
    assert reply.split()[0] in str(mapped)


def test_an_error_in_the_command_itself_is_not_unavailable() -> None:
    assert as_unavailable(ResponseError("ERR wrong number of arguments for 'hset' command")) is None
    error = ResponseError("Command # 1 (HSET k) of pipeline caused error: ERR wrong number of arguments")
    assert as_unavailable(error) is None
