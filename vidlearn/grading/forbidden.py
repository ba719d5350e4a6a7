"""What a question forbids, caught while the student's function runs: in ``check()`` and in the grader.

A question declares names (``FunctionQuestion.forbids``) such as ``"torch.softmax"`` or
``"vidlearn.*"``. Each torch name stands for the public functions that compute the thing *and* the
ATen operators they reach, so an alias is caught as well as the name itself
(``Tensor.softmax``, ``F.softmax``, ``torch.ops.aten._softmax``, a cross-entropy whose inside is a
log-softmax, ``F.scaled_dot_product_attention`` reached through ``nn.MultiheadAttention``):

* a ``TorchFunctionMode`` sees the public function that was called, and names it;
* kernels registered over the ATen operators (CPU, autograd, sparse, MKL-DNN, ...) see every route
  that reaches them, in every thread, even with the mode switched off;
* torch's own Python implementations of the same thing (``torch._refs.softmax``, the decompositions,
  ``flex_attention``) are watched by the code they run;
* ``"vidlearn.*"``: in the student's own notebook a profile hook sees any frame of the course
  library run.

The first forbidden call is *recorded* (an exception alone is not enough: the student's code could
catch it), and the question scores zero with the reason. ``Guard`` checks on the way out that its
hooks are still in place; a function that removed them is reported as interfering.

Inside the grader's sandbox that is not all: :mod:`vidlearn.grading.seal` makes the forbidden things
unusable in the worker's whole process before any student code runs, for good.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Callable, Iterable

__all__ = ["ForbiddenCall", "Guard", "CATALOGUE", "describe", "LIBRARY", "ops_of", "python_of",
           "register_forbidden_kernels"]

LIBRARY = "vidlearn.*"


class ForbiddenCall(RuntimeError):
    """Raised inside the student's code when it calls something its question forbids."""


class _Entry:
    """One forbiddable thing: the public functions (``module:attribute`` paths), the ATen ops, and
    torch's Python implementations of it. (A plain class: the worker imports this module before
    every notebook, so it stays light.)"""

    __slots__ = ("functions", "ops", "python")

    def __init__(self, functions: tuple[str, ...], ops: tuple[str, ...], python: tuple[str, ...] = ()):
        self.functions, self.ops, self.python = functions, ops, python


_SOFTMAX = _Entry(
    functions=("torch:softmax", "torch:log_softmax", "torch:Tensor.softmax", "torch:Tensor.log_softmax",
               "torch._C:TensorBase.softmax", "torch._C:TensorBase.log_softmax",
               "torch.nn.functional:softmax", "torch.nn.functional:log_softmax", "torch.nn.functional:softmin",
               "torch.special:softmax", "torch.special:log_softmax", "torch.sparse:softmax",
               "torch.sparse:log_softmax", "torch._C:_VariableFunctions._softmax",
               "torch._C:_VariableFunctions._log_softmax"),
    ops=("_softmax", "_log_softmax", "_safe_softmax", "_masked_softmax", "_sparse_softmax", "_sparse_log_softmax",
         "softmax", "log_softmax", "special_softmax", "special_log_softmax"),
    python=("torch._refs:softmax", "torch._refs:log_softmax", "torch._refs.special:softmax",
            "torch._refs.special:log_softmax", "torch._refs.nn.functional:softmax",
            "torch._refs.nn.functional:softmin", "torch._refs.nn.functional:log_softmax",
            "torch._decomp.decompositions:_softmax", "torch._decomp.decompositions:_log_softmax",
            "torch._decomp.decompositions:safe_softmax"),
)
_SDPA = _Entry(
    functions=("torch.nn.functional:scaled_dot_product_attention",),
    ops=("scaled_dot_product_attention", "_scaled_dot_product_attention_math", "_scaled_dot_product_flash_attention",
         "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
         "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_fused_attention_overrideable"),
    python=("torch._decomp.decompositions:scaled_dot_product_flash_attention_for_cpu",
            "torch.nn.attention.flex_attention:flex_attention", "torch._higher_order_ops.flex_attention:flex_attention",
            "torch._higher_order_ops.flex_attention:math_attention", "torch._higher_order_ops.flex_attention:sdpa_dense"),
)
_MHA = _Entry(
    functions=("torch.nn.functional:multi_head_attention_forward", "torch:_native_multi_head_attention"),
    ops=("_native_multi_head_attention",),
)

# Declared name -> what it stands for. Names a question may use in ``forbids``.
CATALOGUE: dict[str, _Entry] = {
    "torch.softmax": _SOFTMAX,
    "torch.nn.functional.softmax": _SOFTMAX,
    "torch.nn.functional.scaled_dot_product_attention": _SDPA,
    "torch.nn.MultiheadAttention": _MHA,
}

# Dispatch keys a student's tensor can reach a kernel through on this CPU build.
_KEYS = ("CPU", "AutogradCPU", "SparseCPU", "SparseCsrCPU", "MkldnnCPU", "QuantizedCPU", "NestedTensorCPU",
         "AutogradNestedTensor", "CompositeExplicitAutograd")


def describe(names: Iterable[str]) -> str:
    """The forbidden names in words, for exercise texts and messages."""
    return ", ".join("the vidlearn library" if n == LIBRARY else n for n in names)


def _resolve(path: str):
    """``"module:attr.attr"`` -> the object, or None where this torch build lacks it."""
    module, _, attrs = path.partition(":")
    try:
        obj = sys.modules.get(module) or importlib.import_module(module)
    except ImportError:
        return None
    for attr in attrs.split("."):
        obj = getattr(obj, attr, None)
    return obj


def _display(path: str) -> str:
    module, _, attrs = path.partition(":")
    return {"torch._C": "torch"}.get(module, module) + "." + attrs.replace("TensorBase.", "Tensor.").replace(
        "_VariableFunctions.", "")


def _validate(names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n != LIBRARY and n not in CATALOGUE]
    if unknown:
        raise ValueError(f"cannot forbid {unknown}: known names are {[LIBRARY, *CATALOGUE]}")
    return names


def _code_of(fn):
    """The code object a Python implementation runs (through decorators' ``__wrapped__``), or None."""
    for _ in range(10):
        if fn is None:
            return None
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is None:
            return getattr(fn, "__code__", None)
        fn = wrapped
    return None


def _gather(names: Iterable[str], field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        for item in getattr(CATALOGUE.get(name), field, ()):
            out.setdefault(item, name)  # the first name declared that stands for it
    return out


def ops_of(names: Iterable[str]) -> dict[str, str]:
    """ATen op -> the declared name it stands for."""
    return _gather(names, "ops")


def python_of(names: Iterable[str]) -> dict[str, str]:
    """``module:attribute`` of torch's Python implementations -> the declared name they stand for."""
    return _gather(names, "python")


def _forbidden_kernel(declared: str, op: str) -> Callable:
    def forbidden_kernel(*args, **kwargs):
        reason = f"calls {declared} (it reached ATen's {op}), which this exercise asks you to write"
        for guard in _ACTIVE:
            guard.record(reason)
        raise ForbiddenCall(reason)

    return forbidden_kernel


def register_forbidden_kernels(ops: dict[str, str]):
    """A ``torch.library.Library`` whose kernels, over every dispatch key the ops have here, raise
    (and report to the guards in force). Destroying the library restores torch's own kernels."""
    import torch

    lib = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        for op, declared in ops.items():
            try:
                dump = torch._C._dispatch_dump(f"aten::{op}")
            except RuntimeError:
                continue  # not an operator of this torch build
            for key in _KEYS:
                if f"\n{key}: " in dump or key in ("CPU", "AutogradCPU"):
                    try:
                        lib.impl(op, _forbidden_kernel(declared, op), key)
                    except RuntimeError:
                        pass
    return lib


# ----------------------------------------------------------------------------- the guard

_CO_OPTIMIZED = 0x1
_ACTIVE: list["Guard"] = []  # the guards in force (innermost last); tripwires report to them


def _library_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class Guard:
    """``with Guard(names) as g: fn(...)``; afterwards ``g.violation`` is ``None`` or the reason.

    ``watch_library``: also report any frame of the course library's own code that runs (for the
    student's notebook, where the library is importable; in the sandbox it is absent).
    """

    def __init__(self, names: Iterable[str], *, watch_library: bool = True, register_kernels: bool = True):
        self.names = _validate(names)
        self.violation: str | None = None
        self._watch_library = watch_library and LIBRARY in self.names
        self._register = register_kernels
        self._functions: dict[int, str] = {}
        self._ops: dict[str, str] = {}
        self._codes: dict[tuple[str, int], str] = {}  # where torch's Python implementations start
        self._keep = []  # the resolved functions, so that their ids stay theirs
        for name in self.names:
            entry = CATALOGUE.get(name)
            if entry is None:
                continue
            for path in entry.functions:
                fn = _resolve(path)
                if fn is not None:
                    self._keep.append(fn)
                    alias = _display(path)
                    named = any(_display(p) == name for p in entry.functions)
                    self._functions.setdefault(id(fn), alias if named else f"{name} ({alias})")
            for op in entry.ops:
                self._ops.setdefault(op, name)
            if self._watch_library:  # the profile hook that watches the library watches these too
                for path in entry.python:
                    code = _code_of(_resolve(path))
                    if code is not None:
                        self._codes.setdefault((code.co_filename, code.co_firstlineno), f"{name} ({_display(path)})")
        self._mode = None
        self._library = None
        self._old_profile = None

    # -- recording
    def record(self, reason: str) -> None:
        if self.violation is None:
            self.violation = reason

    def _forbidden(self, what: str) -> ForbiddenCall:
        reason = f"calls {what}, which this exercise asks you to write"
        self.record(reason)
        return ForbiddenCall(reason)

    # -- the hooks
    def _make_mode(self):
        from torch.overrides import TorchFunctionMode

        guard = self

        class _Watch(TorchFunctionMode):
            def __torch_function__(self, func, types_, args=(), kwargs=None):
                name = guard._functions.get(id(func))
                if name is not None:
                    raise guard._forbidden(name)
                return func(*args, **(kwargs or {}))

        return _Watch()

    def _register_kernels(self) -> None:
        if self._register and self._ops:
            self._library = register_forbidden_kernels(self._ops)

    def _profile(self, frame, event, arg):
        # a function's frame (not a module or class body: importing the library is not calling it)
        if event == "call" and frame.f_code.co_flags & _CO_OPTIMIZED:
            code = frame.f_code
            alias = self._codes.get((code.co_filename, code.co_firstlineno))
            if alias is not None:
                self.record(f"calls {alias}, which this exercise asks you to write")
            elif code.co_filename.startswith(self._root) and code.co_filename != self._exempt:
                module = frame.f_globals.get("__name__", "vidlearn")
                name = getattr(code, "co_qualname", code.co_name)
                self.record(f"calls {module}.{name}, which this exercise asks you to write")
        return None

    def __enter__(self) -> "Guard":
        import torch

        self._register_kernels()
        self._mode = self._make_mode()
        self._mode.__enter__()
        _ACTIVE.append(self)
        if self._watch_library:
            self._root = _library_root()
            self._exempt = os.path.abspath(__file__)  # the guard's own hooks run while it watches
            self._old_profile = sys.getprofile()
            self._hook = self._profile  # one bound method, so that it can be recognised on the way out
            sys.setprofile(self._hook)
        self._depth = torch._C._len_torch_function_stack()
        return self

    def verify(self) -> None:
        """Record it if the hooks were taken apart while the student's code ran (they stay in force)."""
        import torch
        from torch.overrides import _get_current_function_mode_stack

        if self._watch_library and sys.getprofile() is not self._hook:
            self.record("switched off the grader's watch on the course library (sys.setprofile)")
            sys.setprofile(self._hook)
        stack = _get_current_function_mode_stack()
        if torch._C._len_torch_function_stack() != self._depth or not stack or stack[-1] is not self._mode:
            self.record("interfered with the grader's watch on torch (its function mode was moved)")
        if self._library is not None and self._library.m is None:
            self.record("interfered with the grader's watch on torch (its kernels were removed)")

    def __exit__(self, *exc) -> None:
        import torch
        from torch.overrides import _get_current_function_mode_stack

        try:
            self.verify()
            if self._watch_library:
                sys.setprofile(self._old_profile)
            while any(m is self._mode for m in _get_current_function_mode_stack()):
                torch._C._pop_torch_function_stack()
        finally:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            if self._library is not None:
                self._library._destroy()
                self._library = None
