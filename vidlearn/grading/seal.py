"""Sealing the grader's worker process, before any student code runs in it.

A watch inside the student's own process can be taken apart by that process (the grader's guard
patched, its replies forged). So inside the sandbox what an exercise forbids is not only watched
but made unusable, for the whole life of the process:

* :func:`seal` registers kernels over the forbidden ATen operators that raise (and report to the
  guard in force), on every dispatch key; replaces torch's own Python implementations of the same
  thing (``torch._refs.softmax``, the decompositions and their tables, ``flex_attention``) by
  tripwires; and installs an audit hook, which no Python code can remove, that refuses what would
  undo that: walking the garbage collector's object graph (to find the kernels' library and destroy
  it), ``ctypes`` (to patch memory), re-running a patched torch module's code (``reload``), tracing
  and profiling hooks, and the list of other threads' frames. The library that holds the kernels is
  kept alive only by that hook.
* :func:`install_tripwires` makes every ``vidlearn.*`` module the sandbox does not have (the course
  library, the question bank) a stand-in whose every attribute is a tripwire.

A student's code may still forge the worker's replies; what it cannot do is compute a forbidden
function's result to put in them.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Iterable

from vidlearn.grading.forbidden import _ACTIVE, ForbiddenCall, ops_of, python_of, register_forbidden_kernels

__all__ = ["seal", "install_tripwires", "BLOCKED_EVENTS"]

# Audit events refused once sealed (and every ctypes.* event).
BLOCKED_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                            "sys.settrace", "sys.setprofile", "sys.monitoring.register_callback"})


def _tripwire(qualname: str, reason: str | None = None):
    reason = reason or f"calls {qualname}, which this exercise asks you to write"

    def tripwire(*args, **kwargs):
        for guard in _ACTIVE:
            guard.record(reason)
        raise ForbiddenCall(f"{qualname} is not available while grading: {reason}")

    tripwire.__qualname__ = tripwire.__name__ = qualname.rsplit(".", 1)[-1]
    return tripwire


def _replace_python_implementations(names: Iterable[str]) -> set[str]:
    """Torch's Python implementations of what is forbidden become tripwires, wherever they are kept
    (their modules, the decomposition tables). Returns the files of the modules changed."""
    files, replaced = set(), {}
    for path, declared in python_of(names).items():
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        original = getattr(module, attr, None)
        if original is None:
            continue
        wire = _tripwire(f"{module_name}.{attr}", f"calls {declared} ({module_name}.{attr}), which this exercise "
                                                  "asks you to write")
        setattr(module, attr, wire)
        replaced[id(original)] = wire
        files.add(getattr(module, "__file__", None))
    # other modules that imported one of them by name keep a reference of their own
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("torch"):
            continue
        for key, value in list(getattr(module, "__dict__", {}).items()):
            if id(value) in replaced and value is not replaced[id(value)]:
                setattr(module, key, replaced[id(value)])
                files.add(getattr(module, "__file__", None))
    ops = ops_of(names)
    try:
        from torch._decomp import global_decomposition_table
    except ImportError:
        global_decomposition_table = {}
    for table in global_decomposition_table.values():
        for op in list(table):
            packet = getattr(op, "overloadpacket", None)
            name = getattr(packet, "__name__", "")
            if name in ops:
                table[op] = _tripwire(f"the decomposition of aten.{name}",
                                      f"calls {ops[name]} (its decomposition), which this exercise asks you to write")
    return {f for f in files if f}


def seal(names: Iterable[str]) -> None:
    """Make everything ``names`` forbids unusable in this process, for good (see the module doc)."""
    names = tuple(names)
    library = register_forbidden_kernels(ops_of(names)) if ops_of(names) else None
    patched_files = _replace_python_implementations(names)

    def refuse(event: str, args: tuple, _keep=library) -> None:  # (the only reference to the library)
        if event in BLOCKED_EVENTS or event.startswith("ctypes."):
            raise RuntimeError(f"{event} is not available while grading")
        if event == "exec" and args and getattr(args[0], "co_filename", None) in patched_files:
            raise RuntimeError("re-running torch's modules is not available while grading")

    sys.addaudithook(refuse)


# ----------------------------------------------------------------------------- tripwire modules


class _TripwireModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _tripwire(f"{self.__name__}.{name}")


class _TripwireFinder:  # a meta path finder and its loader (the protocols, without importlib.abc)
    """Finds every ``package.*`` module that is not really there, and makes it a tripwire module."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(self.package + "."):
            return None
        if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
            return None  # a module the sandbox really has (the worker's own)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _TripwireModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:
        pass


def install_tripwires(package: str) -> None:
    """Inside the sandbox: any ``package.<module>`` that is absent imports as a tripwire module."""
    if not any(isinstance(f, _TripwireFinder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_TripwireFinder(package))
