"""The derivation checker: every step of a derivation, verified.

A derivation is a chain ``e0 = e1 = ... = en``; each step carries its reason::

    from vidlearn.derive import Derivation
    d = (Derivation("(a + b)^2", assumptions={"a": "real", "b": "real"})
         .step("a² + 2ab + b²", "expand the square")
         .step("a² + b²", "drop the cross term"))        # wrong
    r = d.check()
    r.ok, r.failed_step          # (False, 2)
    print(r.message)             # names step 2 and the difference 2*a*b

* :mod:`~vidlearn.derive.notation` reads what students write (Python, Unicode maths, LaTeX) through
  one whitelist; :func:`preview` shows how a string was read.
* :mod:`~vidlearn.derive.checker` checks each step, symbolically or numerically
  (:mod:`~vidlearn.derive.numeric`), in a bounded child (:mod:`~vidlearn.derive.bounds`), and says how
  each verdict was reached.
* :mod:`~vidlearn.derive.identity` checks tensor identities on random inputs.
"""

from vidlearn.derive.checker import CheckResult, Derivation, DerivationError, StepResult
from vidlearn.derive.identity import IdentityResult, check_identity
from vidlearn.derive.notation import Reading, parse, preview, read, symbols_with
from vidlearn.misconception import Misconception

__all__ = [
    "Derivation", "CheckResult", "StepResult", "Misconception", "DerivationError", "IdentityResult",
    "check_identity", "parse", "read", "preview", "Reading", "symbols_with",
]
