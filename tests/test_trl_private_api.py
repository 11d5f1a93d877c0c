"""The private TRL/transformers/accelerate API the trainers rely on is still there, with the signatures they expect.

Each module that subclasses ``GRPOTrainer`` lists what it overrides, calls or reads in ``TRL_PRIVATE_API``. After a
TRL upgrade this test names the method that was renamed or re-signed, instead of a training run failing (or, worse,
an override silently no longer being called).
"""

from __future__ import annotations

import inspect

import pytest
from trl import GRPOTrainer

from toolrl_trl import grpo, kl_reward, ppo, throughput
from toolrl_trl.kl_reward import PrivateAttribute, PrivateMethod, check_private_api

MODULES = (kl_reward, grpo, ppo, throughput)
ENTRIES = [(module.__name__, entry) for module in MODULES for entry in module.TRL_PRIVATE_API]


@pytest.mark.parametrize(("module", "entry"), ENTRIES, ids=[f"{m}:{e.describe()}" for m, e in ENTRIES])
def test_private_api_is_as_expected(module, entry):
    problems = check_private_api((entry,))
    assert not problems, (
        f"{module} relies on {entry.describe()}, which the installed libraries no longer provide as expected: "
        f"{problems[0]}. Adapt {module} (and its TRL_PRIVATE_API) to the new TRL."
    )


def test_every_private_override_is_listed():
    """Each private GRPOTrainer/Trainer method a trainer here redefines appears in its module's list."""
    for module, cls in ((kl_reward, kl_reward.RewardKLTrainer), (grpo, grpo.ToolRLGRPOTrainer), (ppo, ppo.PPOTrainer)):
        listed = {entry.name for entry in module.TRL_PRIVATE_API if isinstance(entry, PrivateMethod)}
        for name, value in vars(cls).items():
            if not (name.startswith("_") and not name.startswith("__") and inspect.isfunction(value)):
                continue
            if any(hasattr(base, name) for base in GRPOTrainer.__mro__):
                assert name in listed, (
                    f"{cls.__name__}.{name} overrides TRL but is not in {module.__name__}.TRL_PRIVATE_API"
                )


def test_the_check_detects_a_renamed_or_resigned_method():
    class Library:
        def _step(self, model, inputs):
            pass

        def __init__(self):
            self.state = None

    assert check_private_api((PrivateMethod(Library, "_step", ("self", "model", "inputs"), "override"),)) == []
    assert check_private_api((PrivateMethod(Library, "_step", ("self", "model"), "call"),)) == []
    resigned = check_private_api((PrivateMethod(Library, "_step", ("self", "model", "batch"), "override"),))
    assert resigned == [
        "Library._step(self, model, batch) [override]: the installed signature is (self, model, inputs)"
    ]
    renamed = check_private_api((PrivateMethod(Library, "_old_step", ("self",), "call"),))
    assert renamed and "no such method" in renamed[0]
    assert check_private_api((PrivateAttribute(Library, "state"),)) == []
    assert "no longer sets self.gone" in check_private_api((PrivateAttribute(Library, "gone"),))[0]
