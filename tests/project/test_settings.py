"""Settings come from the environment; mistakes are reported, not guessed at."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from dockercoins import checks
from dockercoins.env import (
    env_bool,
    env_float,
    env_float_list,
    env_int,
    env_secret,
)


def test_a_typo_in_a_boolean_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("DEBUG", "ture")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='ture' is not a boolean"):
        env_bool("DEBUG")


def test_a_number_below_its_minimum_is_an_error(monkeypatch):
    monkeypatch.setenv("RNG_DELAY", "-1")
    with pytest.raises(ImproperlyConfigured, match="must be at least 0"):
        env_float("RNG_DELAY", 0.1)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "٣"])
def test_a_number_variable_must_be_finite_and_ascii(monkeypatch, raw):
    monkeypatch.setenv("WORKER_DELAY", raw)
    with pytest.raises(ImproperlyConfigured, match="WORKER_DELAY="):
        env_float("WORKER_DELAY", 0.1)


def test_a_number_variable_is_read(monkeypatch):
    monkeypatch.setenv("WORKER_DELAY", "0.01")
    assert env_float("WORKER_DELAY", 0.1) == 0.01


def test_a_secret_is_read_from_the_file_swarm_mounts(monkeypatch, tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-swarm-secret\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env_secret("SECRET_KEY") == "from-a-swarm-secret"


def test_a_missing_secret_file_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE="):
        env_secret("SECRET_KEY")


def test_deploy_checks_warn_when_no_secret_key_is_configured(settings):
    settings.SECRET_KEY_FROM_ENV = False
    assert [w.id for w in checks.secret_key_is_configured(None)] == ["dockercoins.W001"]
    settings.SECRET_KEY_FROM_ENV = True
    assert checks.secret_key_is_configured(None) == []


@pytest.mark.parametrize("raw", ["5.5", "٣", "1_000", "-1", "5e1"])
def test_a_whole_number_variable_takes_ascii_digits_only(monkeypatch, raw):
    monkeypatch.setenv("LOGIN_FAILURE_LIMIT", raw)
    with pytest.raises(ImproperlyConfigured, match="LOGIN_FAILURE_LIMIT="):
        env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)


def test_a_whole_number_variable_is_read(monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURE_LIMIT", "12")
    assert env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1) == 12


def test_a_list_of_seconds_is_read(monkeypatch):
    monkeypatch.setenv("WEBHOOK_BACKOFF", "1, 2.5,60")
    assert env_float_list("WEBHOOK_BACKOFF", (5,), 0.1, 3600) == (1.0, 2.5, 60.0)
    monkeypatch.setenv("WEBHOOK_BACKOFF", "")
    assert env_float_list("WEBHOOK_BACKOFF", (5,), 0.1, 3600) == (5,)
