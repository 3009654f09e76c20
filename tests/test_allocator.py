"""The allocator settings the CLI applies (migrate/allocator.py)."""

from __future__ import annotations

import platform
import sys

import pytest

from migrate.allocator import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the settings are glibc's",
)
def test_glibc_takes_every_setting():
    assert keep_freed_memory() is True


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="elsewhere the defaults stay")
def test_other_systems_keep_their_defaults():
    assert keep_freed_memory() is False
