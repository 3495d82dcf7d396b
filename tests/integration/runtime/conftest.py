"""Fixtures of the runtime tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def make_data_dir() -> Path:
    # Not under pytest's basetemp: every new pytest session on the machine chmods
    # /tmp/pytest-of-<user> back to 0700, which locks out the `pgserver` user mid-initdb.
    return Path(tempfile.mkdtemp(prefix="oms-runtime-test-"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = make_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def module_data_dir() -> Iterator[Path]:
    path = make_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
