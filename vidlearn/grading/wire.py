"""A safe channel between the student's process and the grader: JSON plus raw bytes, never pickle.

Values are encoded as a small JSON tree::

    {"t": "tensor", "dtype": "float64", "shape": [2, 3], "data": "<base64>"}
    {"t": "num", "v": 1.5} | {"t": "int", "v": 3} | {"t": "bool", "v": true} | {"t": "none"}
    {"t": "str", "v": "..."} | {"t": "list", "items": [...]}
    {"t": "unsupported", "type": "MyObject"}

A differentiable question's (``FunctionQuestion.differentiable``) tensors carry more: an argument
``"grad": true`` (decoded as a leaf that requires grad); a result ``"grads": [<tensor>, ...]``, its gradient
with respect to those arguments, computed where the student's code ran, or ``"flaw": "<why not>"``
(decoded as the tensor's attributes :data:`GRADS` and :data:`FLAW`, which ``questions.compare`` checks).

Decoding (on the trusted side) checks everything: known type tags only, dtypes from an allow
list, shapes that agree with the byte count, bounded sizes and depth. A malformed message is an
error, never an object the grader would call into. Frames on a pipe are a 4-byte big-endian
length followed by the UTF-8 JSON text.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from typing import Any

__all__ = ["encode", "decode", "WireError", "write_frame", "frame_bytes", "read_frame", "MAX_FRAME", "GRADS", "FLAW"]

GRADS = "_vidlearn_grads"  # attribute of a decoded result: its gradient with respect to the arguments
FLAW = "_vidlearn_grad_flaw"  # attribute of a decoded result: why it has no (usable) gradient
MAX_GRADS = 16  # gradients one result may carry (one per argument that requires grad)
MAX_FLAW = 500

MAX_FRAME = 64 << 20  # bytes in one message
MAX_DEPTH = 8
MAX_ITEMS = 10_000
MAX_STR = 100_000

_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                "complex64", "complex128")
_DTYPES: dict = {}  # name -> torch dtype, filled on first use (the frame functions need no torch)
_NAMES: dict = {}


def _torch():
    import torch

    if not _DTYPES:
        _DTYPES.update({n: getattr(torch, n) for n in _DTYPE_NAMES})
        _NAMES.update({v: k for k, v in _DTYPES.items()})
    return torch


class WireError(ValueError):
    """A message that does not follow the protocol."""


def encode(x: Any, _depth: int = 0, *, grad: bool = True) -> dict:
    """Plain JSON-able tree for ``x`` (runs on the untrusted side, and for test inputs).

    ``grad``: mark floating tensors that require grad (``"grad": true``), as a differentiable question's
    arguments are; a result is encoded with ``grad=False`` (its gradient travels as ``"grads"``)."""
    torch = _torch()
    import numpy as np

    if _depth > MAX_DEPTH:
        return {"t": "unsupported", "type": "nesting too deep"}
    if isinstance(x, torch.Tensor):
        t = torch.Tensor.as_subclass(x, torch.Tensor).detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            return {"t": "unsupported", "type": f"tensor of dtype {t.dtype}"}
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        node = {"t": "tensor", "dtype": _NAMES[t.dtype], "shape": list(t.shape), "data": base64.b64encode(raw).decode()}
        if grad and x.requires_grad and t.dtype.is_floating_point:
            node["grad"] = True
        return node
    if isinstance(x, np.ndarray):
        try:
            return encode(torch.from_numpy(np.ascontiguousarray(x)), _depth)
        except TypeError:
            return {"t": "unsupported", "type": f"numpy array of dtype {x.dtype}"}
    if x is None:
        return {"t": "none"}
    if isinstance(x, (bool, np.bool_)):
        return {"t": "bool", "v": bool(x)}
    if isinstance(x, (int, np.integer)):
        return {"t": "int", "v": int(x)}
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return {"t": "num", "v": v if math.isfinite(v) else repr(v)}
    if isinstance(x, str):
        return {"t": "str", "v": x[:MAX_STR]}
    if isinstance(x, (list, tuple)):
        return {"t": "list", "items": [encode(i, _depth + 1, grad=grad) for i in list(x)[:MAX_ITEMS]]}
    return {"t": "unsupported", "type": type(x).__name__[:100]}


def _int(v, what: str) -> int:
    if type(v) is not int:
        raise WireError(f"{what} must be an integer")
    return v


def decode(node: Any, _depth: int = 0) -> Any:
    """Rebuild a value from :func:`encode`'s tree, validating every field (trusted side)."""
    torch = _torch()
    if _depth > MAX_DEPTH + 1:
        raise WireError("nesting too deep")
    if not isinstance(node, dict) or not isinstance(node.get("t"), str):
        raise WireError("every value must be an object with a type tag")
    t = node["t"]
    if t == "tensor":
        name = node.get("dtype")
        dtype = _DTYPES.get(name) if isinstance(name, str) else None
        if dtype is None:
            raise WireError(f"unknown dtype {node.get('dtype')!r}")
        shape = node.get("shape")
        if not isinstance(shape, list) or len(shape) > 8 or any(_int(s, "a dimension") < 0 for s in shape):
            raise WireError("shape must be a list of at most 8 non-negative integers")
        numel = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        data = node.get("data")
        if not isinstance(data, str) or len(data) > MAX_FRAME * 4 // 3 + 4:
            raise WireError("tensor data must be a base64 string")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise WireError("tensor data is not valid base64") from None
        if len(raw) != numel * itemsize:
            raise WireError(f"{len(raw)} bytes do not hold a {shape} tensor of {node['dtype']}")
        if dtype == torch.bfloat16:
            flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(torch.bfloat16) if raw else torch.empty(0, dtype=dtype)
        else:
            flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out = flat.reshape(shape).clone()
        return _gradient_fields(node, out, _depth)
    if t == "none":
        return None
    if t == "bool":
        if not isinstance(node.get("v"), bool):
            raise WireError("bool value expected")
        return node["v"]
    if t == "int":
        return _int(node.get("v"), "an int value")
    if t == "num":
        v = node.get("v")
        if isinstance(v, str) and v in ("nan", "inf", "-inf"):
            return float(v)
        if type(v) not in (int, float):
            raise WireError("number expected")
        return float(v)
    if t == "str":
        v = node.get("v")
        if not isinstance(v, str) or len(v) > MAX_STR:
            raise WireError("string expected")
        return v
    if t == "list":
        items = node.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise WireError("list expected")
        return [decode(i, _depth + 1) for i in items]
    if t == "unsupported":
        return Unsupported(str(node.get("type", "?"))[:100])
    raise WireError(f"unknown type tag {t!r}")


def _gradient_fields(node: dict, out, depth: int):
    """A decoded tensor with what its node says of gradients (``grad``, ``grads``, ``flaw``), validated."""
    if "grad" in node:
        if node["grad"] is not True:
            raise WireError("grad must be true when present")
        if not out.dtype.is_floating_point:
            raise WireError("only a floating tensor can require grad")
        out.requires_grad_(True)
    if "grads" in node:
        grads = node["grads"]
        if not isinstance(grads, list) or len(grads) > MAX_GRADS:
            raise WireError(f"grads must be a list of at most {MAX_GRADS} tensors")
        decoded = []
        for g in grads:
            if not isinstance(g, dict) or g.get("t") != "tensor" or any(k in g for k in ("grad", "grads", "flaw")):
                raise WireError("a gradient must be a plain tensor")
            decoded.append(decode(g, depth + 1))
        setattr(out, GRADS, decoded)
    if "flaw" in node:
        flaw = node["flaw"]
        if not isinstance(flaw, str) or len(flaw) > MAX_FLAW:
            raise WireError("flaw must be a short string")
        setattr(out, FLAW, flaw)
    return out


class Unsupported:
    """Stands for a value the student returned that the channel does not carry."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def frame_bytes(message: dict) -> bytes:
    payload = json.dumps(message, allow_nan=False).encode()
    return struct.pack(">I", len(payload)) + payload


def write_frame(fd: int, message: dict) -> None:
    view = memoryview(frame_bytes(message))
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_frame(fd: int) -> dict | None:
    """Blocking read of one frame (``None`` at end of stream). For the untrusted side's input."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_FRAME:
        raise WireError(f"frame of {n} bytes is larger than {MAX_FRAME}")
    body = _read_exact(fd, n)
    if body is None:
        raise WireError("stream ended inside a frame")
    return json.loads(body)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
