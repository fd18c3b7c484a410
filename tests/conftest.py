"""Shared fixtures: one real local Ray for the session, and the test corpus written once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray

from tests.corpus import make_corpus

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

pytest_plugins = ["tests.s3"]  # the ``s3`` fixture: a real S3 server on 127.0.0.1


@pytest.fixture(scope="session")
def ray_local():
    """A real 2-CPU local Ray cluster, shared by the tests that need one."""
    from dataengine.runtime import start_ray

    start_ray(workers=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sources YAML of the test corpus (see tests/corpus.py)."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))
