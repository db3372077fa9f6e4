"""Public model names resolve to routes; unknown ones are a clear 404 naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ModelNotFoundError
from tests.routing.fakes import make_router


def test_a_known_model_resolves_to_its_deployments_in_order() -> None:
    h = make_router([{"name": "a"}, {"name": "b"}])

    route = h.router.route("gpt")

    assert route.public_model == "gpt"
    assert route.kind == "chat"
    assert [d.name for d in route.deployments] == ["a", "b"]


def test_unnamed_deployments_get_a_name_saying_model_provider_and_position() -> None:
    h = make_router([{}, {"provider": "secondary"}])

    assert [d.name for d in h.router.route("gpt").deployments] == ["gpt/primary/0", "gpt/secondary/1"]


@pytest.mark.parametrize("model", ["gpt-5-unknown", "GPT", "", None, 42, ["gpt"]])
def test_an_unknown_model_is_a_404_naming_the_model_parameter(model: Any) -> None:
    h = make_router([{"name": "a"}])

    with pytest.raises(ModelNotFoundError) as caught:
        h.router.route(model)

    err = caught.value
    assert err.status == 404
    assert err.param == "model"
    assert err.body()["error"]["code"] == "model_not_found"
    assert err.body()["error"]["param"] == "model"
    assert h.transport.calls == []
