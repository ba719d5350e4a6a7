"""Stand-ins for students: functions that answer given test inputs as some other function does.

A stand-in returns, for each input it was prepared for, what ``fn`` returns for it (computed here,
beforehand), and fails on any other input. It plays a known mistake (``fn`` a misconception) in the
grader's sandbox, where the question bank is absent, or a lookup table of answers memorised from
``case()`` (``fn`` the reference, prepared on the public cases).
"""

import hashlib
import json

from vidlearn.grading import wire

_FINGERPRINT = '''
def _fingerprint(x):
    import hashlib, torch
    if isinstance(x, torch.Tensor):
        t = x.detach().contiguous()
        return ["T", str(t.dtype), list(t.shape), hashlib.sha256(t.view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()]
    if isinstance(x, (list, tuple)):
        return ["L", [_fingerprint(i) for i in x]]
    if isinstance(x, dict):
        return ["D", sorted((k, _fingerprint(v)) for k, v in x.items())]
    return ["V", repr(x)]
'''
exec(_FINGERPRINT)


def _key(args, kwargs) -> str:
    return hashlib.sha256(json.dumps(_fingerprint([list(args), kwargs])).encode()).hexdigest()


def _played(fn, cases) -> dict:
    """input fingerprint -> what ``fn`` returns for it (or the error it raises)."""
    table = {}
    for c in cases:
        try:
            table[_key(c.args, c.kwargs)] = ("ok", fn(*c.args, **c.kwargs))
        except Exception as err:
            table[_key(c.args, c.kwargs)] = ("raise", f"{type(err).__name__}: {err}")
    return table


def stand_in(fn, cases):
    """An in-process function that answers each of ``cases`` as ``fn`` does (for check())."""
    table = _played(fn, cases)

    def student(*args, **kwargs):
        kind, value = table[_key(args, kwargs)]
        if kind == "raise":
            raise RuntimeError(value)
        return value

    return student


def stand_in_code(name: str, fn, cases) -> str:
    """Notebook code defining ``name`` to answer each of ``cases`` as ``fn`` does (for the grader)."""
    table = {k: (kind, wire.encode(v) if kind == "ok" else v) for k, (kind, v) in _played(fn, cases).items()}
    return (f"import hashlib, json\nfrom vidlearn.grading import wire\n{_FINGERPRINT}\n"
            f"_TABLE_{name} = json.loads({json.dumps(json.dumps(table))})\n\n"
            f"def {name}(*args, **kwargs):\n"
            f"    kind, value = _TABLE_{name}[hashlib.sha256(json.dumps(_fingerprint([list(args), kwargs])).encode()).hexdigest()]\n"
            "    if kind == 'raise':\n        raise RuntimeError(value)\n"
            "    return wire.decode(value)\n")
