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
# Adversarial fixture: starving the neighbours
#
# A cell forks sixty busy processes, each in a session of its own (out of reach of a process-group
# kill), then the notebook answers honestly. Its sandbox has one CPU and a process cap of its own,
# so a submission graded beside it keeps its own CPU; before each question the worker kills them.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 1, 1, 2


# %%
import math
import os

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
STARTED = 0
for _ in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.setsid()
        while True:
            pass
    STARTED += 1

# %%
import time

time.sleep(3)  # the sixty spin on while this notebook waits: a neighbour graded now must not notice

# %%
# @vidlearn-honest-answers@
