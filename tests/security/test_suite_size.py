"""The hostile-input suite keeps its size: at least 50 cases (the terminal summary prints the exact count)."""

from __future__ import annotations

import pytest


def test_at_least_50_hostile_cases(pytestconfig: pytest.Config) -> None:
    counter = pytestconfig.pluginmanager.get_plugin("crawlrag-hostile-counter")
    assert counter is not None
    if not counter.all_modules_collected():
        pytest.skip("only part of tests/security was collected")
    assert counter.collected >= 50, counter.collected
