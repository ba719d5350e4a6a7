"""The grader's channel: values survive the round trip, and malformed messages are refused."""

import base64
import math

import numpy as np
import pytest
import torch

from vidlearn.grading import wire


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64]
)
def test_tensor_round_trip(dtype):
    g = torch.Generator().manual_seed(0)
    t = (torch.randn(3, 4, generator=g) * 10).to(dtype) if dtype != torch.complex64 else torch.randn(3, 4, dtype=dtype, generator=g)
    back = wire.decode(wire.encode(t))
    assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t)


def test_empty_and_scalar_tensors():
    for t in (torch.empty(0, 5), torch.tensor(3.5, dtype=torch.float64)):
        back = wire.decode(wire.encode(t))
        assert back.shape == t.shape and torch.equal(back, t)


def test_plain_values_round_trip():
    value = [1, 2.5, "text", None, True, [torch.ones(2), float("nan"), float("-inf")]]
    back = wire.decode(wire.encode(value))
    assert back[:5] == [1, 2.5, "text", None, True]
    assert torch.equal(back[5][0], torch.ones(2))
    assert math.isnan(back[5][1]) and back[5][2] == float("-inf")


def test_numpy_arrays_become_tensors():
    back = wire.decode(wire.encode(np.arange(6, dtype=np.float64).reshape(2, 3)))
    assert torch.equal(back, torch.arange(6, dtype=torch.float64).reshape(2, 3))


class Liar(torch.Tensor):
    def __eq__(self, other):  # a rigged comparison must not survive the channel
        return True


def test_tensor_subclass_arrives_as_a_plain_tensor():
    liar = torch.zeros(3).as_subclass(Liar)
    back = wire.decode(wire.encode(liar))
    assert type(back) is torch.Tensor
    assert not torch.equal(back, torch.ones(3))


def test_arbitrary_objects_are_not_carried():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    back = wire.decode(wire.encode(AlwaysEqual()))
    assert isinstance(back, wire.Unsupported) and "AlwaysEqual" in repr(back)


def _tensor_node(**over):
    node = wire.encode(torch.ones(2, 2))
    node.update(over)
    return node


@pytest.mark.parametrize(
    "node",
    [
        "not a dict",
        {"no": "tag"},
        {"t": "pickle", "v": "gASV"},
        _tensor_node(dtype="object"),
        _tensor_node(shape=[3, 3]),
        _tensor_node(shape=[-1, 4]),
        _tensor_node(shape=[2.0, 2]),
        _tensor_node(shape="2x2"),
        _tensor_node(data="***not base64***"),
        _tensor_node(data=base64.b64encode(b"123").decode()),
        {"t": "int", "v": "3"},
        {"t": "num", "v": "1e3"},
        {"t": "bool", "v": 1},
        {"t": "list", "items": "abc"},
        {"t": "str", "v": 5},
    ],
)
def test_malformed_values_are_refused(node):
    with pytest.raises(wire.WireError):
        wire.decode(node)


def test_nesting_depth_is_bounded():
    node = {"t": "none"}
    for _ in range(20):
        node = {"t": "list", "items": [node]}
    with pytest.raises(wire.WireError, match="deep"):
        wire.decode(node)


def test_frames_round_trip_through_a_pipe():
    import os

    r, w = os.pipe()
    wire.write_frame(w, {"event": "ready", "errors": {}})
    os.close(w)
    assert wire.read_frame(r) == {"event": "ready", "errors": {}}
    assert wire.read_frame(r) is None
    os.close(r)


def test_a_differentiable_questions_argument_comes_back_as_a_leaf_that_requires_grad():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    back = wire.decode(wire.encode(x))
    assert back.requires_grad and back.is_leaf and torch.equal(back.detach(), x.detach())
    # a result is encoded without the flag: the grader never holds a student's tensor that requires grad
    assert not wire.decode(wire.encode(x * 2, grad=False)).requires_grad
    assert not wire.decode(wire.encode(torch.ones(2))).requires_grad


def test_a_results_gradient_or_flaw_travels_as_attributes():
    node = wire.encode(torch.tensor(1.5, dtype=torch.float64), grad=False)
    node["grads"] = [wire.encode(torch.ones(2, 3, dtype=torch.float64), grad=False)]
    back = wire.decode(node)
    (g,) = getattr(back, wire.GRADS)
    assert torch.equal(g, torch.ones(2, 3, dtype=torch.float64)) and not hasattr(back, wire.FLAW)
    node = wire.encode(torch.tensor(1.5), grad=False)
    node["flaw"] = "no gradient path"
    assert getattr(wire.decode(node), wire.FLAW) == "no gradient path"


@pytest.mark.parametrize("extra", [{"grad": False}, {"grad": 1}, {"grads": "x"}, {"grads": [{"t": "num", "v": 1}]},
                                   {"grads": [wire.encode(torch.ones(1))] * (wire.MAX_GRADS + 1)},
                                   {"grads": [{**wire.encode(torch.ones(1)), "grads": []}]},
                                   {"flaw": 3}, {"flaw": "x" * (wire.MAX_FLAW + 1)}])
def test_malformed_gradient_fields_are_refused(extra):
    with pytest.raises(wire.WireError):
        wire.decode({**wire.encode(torch.ones(2)), **extra})


def test_an_integer_tensor_cannot_require_grad():
    with pytest.raises(wire.WireError):
        wire.decode({**wire.encode(torch.ones(2, dtype=torch.int64)), "grad": True})
