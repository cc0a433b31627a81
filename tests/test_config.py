"""Settings come from the environment; bad values are named."""

from __future__ import annotations

import pytest

from notifier.core.config import Settings


def test_environment_values_are_typed() -> None:
    settings = Settings.from_env(
        environ={"SEND_MAX_ATTEMPTS": "3", "ALLOW_INTERNATIONAL_SMS": "yes"}
    )
    assert settings.SEND_MAX_ATTEMPTS == 3
    assert settings.ALLOW_INTERNATIONAL_SMS is True


def test_a_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="SEND_MAX_ATTEMPTS='six' is not a valid int"):
        Settings.from_env(environ={"SEND_MAX_ATTEMPTS": "six"})


def test_unknown_overrides_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown settings: NOT_A_SETTING"):
        Settings.from_env({"NOT_A_SETTING": 1}, environ={})
