"""The grader's worker seals its process before a notebook runs: what the exercise forbids does not work
in it by any route, and what would undo that is refused (in a subprocess: a seal is for good)."""

import json
import subprocess
import sys

import pytest

ATTEMPTS = {
    "torch.softmax": "torch.softmax(x, -1)",
    "Tensor.softmax": "x.softmax(-1)",
    "aten": "torch.ops.aten._softmax(x, -1, False)",
    "log_softmax": "torch.log_softmax(x, -1)",
    "cross_entropy": "torch.nn.functional.cross_entropy(x, torch.tensor([0, 1, 2]))",
    "torch._refs": "imp('torch._refs').softmax(x, -1)",
    "decomposition table": "imp('torch._decomp').decomposition_table[torch.ops.aten._softmax.default](x, -1, False)",
    "decompositions module": "imp('torch._decomp.decompositions')._softmax(x, -1, False)",
    "sdpa": "torch.nn.functional.scaled_dot_product_attention(x[None], x[None], x[None])",
    "flex_attention": "imp('torch.nn.attention.flex_attention').flex_attention(x[None, None], x[None, None], "
                      "x[None, None])",
    "in a thread": "__import__('concurrent.futures').futures.ThreadPoolExecutor(1).submit(torch.softmax, x, -1).result()",
    "gc walk": "__import__('gc').get_objects()",
    "gc referrers": "__import__('gc').get_referrers(torch)",
    "ctypes": "__import__('ctypes').CDLL(None)",
    "settrace": "sys.settrace(None)",
    "setprofile": "sys.setprofile(None)",
    "other threads' frames": "sys._current_frames()",
    "reload a patched module": "imp('importlib').reload(imp('torch._refs'))",
}
PROGRAM = """
import importlib, json, sys, torch
from vidlearn.grading.seal import seal
imp = importlib.import_module
seal(["torch.softmax", "torch.nn.functional.softmax", "torch.nn.functional.scaled_dot_product_attention",
      "torch.nn.MultiheadAttention"])
x = torch.randn(3, 4, dtype=torch.float64)
out = {}
for name, code in json.loads(sys.argv[1]).items():
    try:
        eval(code)
        out[name] = "worked"
    except BaseException as err:
        out[name] = f"{type(err).__name__}: {err}"
honest = (x - x.amax(-1, keepdim=True)).exp()
out["honest"] = bool(torch.allclose((honest / honest.sum(-1, keepdim=True)).sum(-1), torch.ones(3, dtype=torch.float64)))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def sealed():
    proc = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(ATTEMPTS)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_nothing_forbidden_works_and_nothing_undoes_the_seal(sealed, name):
    assert sealed[name] != "worked"
    assert "not available while grading" in sealed[name] or "which this exercise asks you to write" in sealed[name], \
        sealed[name]


def test_honest_code_still_works(sealed):
    assert sealed["honest"] is True
