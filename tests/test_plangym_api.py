"""plangym 0.1.32's own contract tests (plangym.api_tests) against atari_vec.plangym's
AtariEnv and ParallelEnv: the test classes come from plangym; this module only supplies the
``env`` fixture, as plangym's own tests do."""

from __future__ import annotations

import pytest

try:  # a missing plangym fails the run (never a silent skip): the README's test command installs it
    import plangym
except ImportError as e:  # pragma: no cover
    raise ImportError("these tests need plangym: pip install --no-deps plangym==0.1.32") from e

from plangym.api_tests import (  # noqa: E402,F401  (pytest collects the imported classes and fixtures)
    TestPlanEnv,
    TestPlangymEnv,
    TestVideogameEnv,
    batch_size,
    display,
)

from atari_vec import plangym  # noqa: E402


def ram():
    return plangym.AtariEnv(name="ALE/MsPacman-v5", obs_type="ram")


def rgb():
    return plangym.AtariEnv(name="ALE/MsPacman-v5")


def grayscale_no_autoreset():
    return plangym.AtariEnv(name="ALE/MsPacman-v5", obs_type="grayscale", autoreset=False)


def parallel():
    return plangym.ParallelEnv(env_class=plangym.AtariEnv, name="ALE/MsPacman-v5", obs_type="ram", n_workers=2)


@pytest.fixture(params=[ram, rgb, grayscale_no_autoreset, parallel], scope="module")
def env(request):
    env = request.param()
    yield env
    env.close()
