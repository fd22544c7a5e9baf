"""Probes of tests/test_isolation.py, run in the sandbox's worker (copied there as grader/probes_isolation.py).

They call functions of a small hostile ``maml.py`` each test writes. Only the
standard library is imported at the top, so ``privileges`` also runs when the
worker has switched to a user that cannot read the Python installation's
site-packages.
"""

from __future__ import annotations

import importlib
import time

from grader.worker import continues_random_state


def run(function: str, **kwargs):
    """``maml.<function>(**kwargs)``, the module imported as the real probes do (messages included)."""
    from grader.probes import student_module

    return getattr(student_module("maml"), function)(**kwargs)


def privileges(**kwargs):
    """``maml.probe(**kwargs)`` with a plain import (no numpy needed)."""
    return importlib.import_module("maml").probe(**kwargs)


def draw() -> list[float]:
    """Numbers from Python's, numpy's and TensorFlow's global random state, as student code would draw them."""
    import random

    import numpy as np
    import tensorflow as tf

    return [random.random(), *np.random.rand(2), *tf.random.uniform([2]).numpy(), *tf.random.normal([2]).numpy()]


@continues_random_state
def draw_in_parts() -> list[float]:
    """``draw``, as a probe whose consecutive calls are one run in parts (training in chunks)."""
    return draw()


def grow():
    """Allocates without bound, 16 MB a step, each page written: a measurement too big for its container."""
    kept = []
    while True:
        kept.append(bytearray(b"x") * (16 * 2**20))
        time.sleep(0.005)
