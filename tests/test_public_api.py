"""Hostile input at every public entry point: a named TypeError or ValueError, never a number.

Two layers of fuzzing:

- every public callable, given a string for every required argument, raises ``TypeError``
  whose message starts with the name of one of its arguments;
- for a table of valid calls, each argument in turn is replaced by junk of every kind (a
  string, a bool, a complex number, an object, NaN, a wrong shape); each must raise
  ``TypeError`` or ``ValueError`` naming that very argument.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rlnotes


def _is_result_type(obj: Any) -> bool:
    """Result containers (NamedTuples, and dataclasses that validate nothing) are outputs."""
    if not inspect.isclass(obj):
        return False
    if issubclass(obj, tuple):
        return True
    return dataclasses.is_dataclass(obj) and not hasattr(obj, "__post_init__")


def _required(obj: Any) -> list[str]:
    params = inspect.signature(obj).parameters.values()
    return [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _callables() -> list[str]:
    names = []
    for name in rlnotes.__all__:
        obj = getattr(rlnotes, name)
        if _is_result_type(obj) or not callable(obj) or not _required(obj):
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("name", _callables())
def test_strings_everywhere_give_a_named_type_error(name: str) -> None:
    obj = getattr(rlnotes, name)
    required = _required(obj)
    with pytest.raises(TypeError) as err:
        obj(**{p: "junk" for p in required})
    first_word = str(err.value).split(" ", 1)[0]
    assert first_word in required, f"{name}: {err.value}"


def test_enough_entry_points_are_fuzzed() -> None:
    assert len(_callables()) >= 30


# -- per-argument junk on valid calls --------------------------------------------------------
MDP = rlnotes.random_mdp(4, 2, 0.9, seed=0)
PI = np.full((4, 2), 0.5)
Q = np.zeros((4, 2))
THETA = np.zeros((4, 2))
T = 6
REWARDS = np.ones(T)
VALUES = np.zeros(T)


def _valid_calls() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    return {
        "random_mdp": (
            rlnotes.random_mdp,
            dict(n_states=4, n_actions=2, gamma=0.9, seed=0),
        ),
        "bellman_operator": (rlnotes.bellman_operator, dict(mdp=MDP, Q=Q, pi=PI)),
        "bellman_optimality_operator": (rlnotes.bellman_optimality_operator, dict(mdp=MDP, Q=Q)),
        "policy_evaluation": (rlnotes.policy_evaluation, dict(mdp=MDP, pi=PI)),
        "policy_chain": (rlnotes.policy_chain, dict(mdp=MDP, pi=PI)),
        "softmax_policy": (rlnotes.softmax_policy, dict(theta=THETA)),
        "discounted_cumsum": (rlnotes.discounted_cumsum, dict(x=REWARDS, gamma=0.9)),
        "reward_to_go": (rlnotes.reward_to_go, dict(rewards=REWARDS, gamma=0.9)),
        "gae": (
            rlnotes.gae,
            dict(rewards=REWARDS, values=VALUES, next_values=VALUES, gamma=0.9, lam=0.95),
        ),
        "lambda_returns": (
            rlnotes.lambda_returns,
            dict(rewards=REWARDS, values=VALUES, next_values=VALUES, gamma=0.9, lam=0.95),
        ),
    }


JUNK: dict[str, Any] = {
    "string": "0.5",
    "bool": True,
    "complex": 0.5 + 0.5j,
    "object": object(),
    "nan": float("nan"),
    "wrong shape": np.zeros((3, 3, 3)),
}

#: Junk that is legitimately accepted for an argument: (call, argument, junk kind).
ACCEPTED: set[tuple[str, str, str]] = {
    ("discounted_cumsum", "x", "wrong shape"),  # any number of dimensions is legal
}


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for call, (_, kwargs) in _valid_calls().items():
        for arg in kwargs:
            for kind in JUNK:
                if (call, arg, kind) not in ACCEPTED:
                    cases.append((call, arg, kind))
    return cases


@pytest.mark.parametrize(("call", "arg", "kind"), _cases())
def test_junk_in_one_argument_is_named(call: str, arg: str, kind: str) -> None:
    fn, kwargs = _valid_calls()[call]
    fn(**kwargs)  # the valid call works
    bad = dict(kwargs, **{arg: JUNK[kind]})
    with pytest.raises((TypeError, ValueError)) as err:
        fn(**bad)
    assert str(err.value).startswith(arg), f"{call}({arg}={kind}): {err.value}"


@pytest.mark.parametrize("seed", [-1, True, 2**64, 1.5, "0"])
def test_bad_seeds_are_named(seed: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="^seed "):
        rlnotes.random_mdp(4, 2, 0.9, seed=seed)


def test_torch_tensor_requiring_grad_is_accepted_as_data() -> None:
    torch = pytest.importorskip("torch")
    r = torch.ones(T, requires_grad=True)
    expected = 2.0 * (1.0 - 0.5 ** (T - np.arange(T)))  # sum_{k < T - t} 2^-k
    np.testing.assert_allclose(rlnotes.reward_to_go(r, 0.5), expected, rtol=1e-15)
