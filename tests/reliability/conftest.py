"""The reliability tests (issue #6): a real server killed, contended, starved of disk and
locked out. Their helpers' asserts are rewritten by pytest so that failures show values."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("server_helpers", "appenders")
