# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   vidlearn:
#     exercise: ex01
# ---

# %% [markdown]
# Adversarial fixture: running the reference solutions
#
# Looks for `solutions/ex01_attention.py` where the course is checked out (the path the test gives,
# the library's own folder, the working directory's parents) and anywhere on the visible filesystem
# for a file holding the solution markers, and executes what it finds. The sandbox holds neither the
# repository nor its solutions: nothing is defined, and every question scores zero.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 0, 0, 0


# %%
import os
from pathlib import Path

import vidlearn

# The test harness replaces the next line with the run's settings (ports, paths, tokens).
CONFIG = {}  # @vidlearn-test-config@

# %%
_candidates = [Path(CONFIG.get("repo", "/nonexistent")) / "solutions" / "ex01_attention.py",
               Path(vidlearn.__file__).resolve().parents[1] / "solutions" / "ex01_attention.py"]
for top in ("/",):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "dev")]
        for f in filenames:
            if f.startswith("ex01_attention") and f.endswith(".py"):
                _candidates.append(Path(dirpath) / f)

for path in _candidates:
    try:
        text = path.read_text()
    except OSError:
        continue
    if "BEGIN SOLUTION" in text:
        exec(compile(text, str(path), "exec"))
        break
