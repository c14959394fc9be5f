"""The cache extras are named so Airflow does not mask them; the pre-1.0 names still work until 2.0.

Airflow's secret masker hides the value of any extra whose name contains ``token`` (and other words):
once a task read a connection with ``token_cache: local``, every "local" in its log became ``***``.
"""

from __future__ import annotations

import json
import logging

import pytest

from carto_provider._hook_params import DEPRECATED_EXTRAS
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.provider_info import CONNECTION_EXTRA_FIELDS
from tests.connection.test_metadata import should_hide_value_for_key

EXTRA = {
    "cache_dir": "/srv/carto-cache",
    "cache_backend": "local",
    "cache_redis_url": "redis://cachehost:6379/1",
}


def _masked(extra: dict[str, str]):
    """A masker holding what Airflow masks of a connection's extra (its rule, its masker)."""
    try:
        from airflow.sdk._shared.secrets_masker import SecretsMasker
    except ImportError:  # Airflow 2
        from airflow.utils.log.secrets_masker import SecretsMasker
    masker = SecretsMasker()
    for name, value in extra.items():
        if should_hide_value_for_key(name):
            masker.add_mask(value)
    return masker


@pytest.mark.parametrize("name", sorted(CONNECTION_EXTRA_FIELDS))
def test_airflow_masks_none_of_the_extras(name):
    assert not should_hide_value_for_key(name)


@pytest.mark.parametrize("name", sorted(DEPRECATED_EXTRAS))
def test_airflow_masked_the_old_names(name):
    """Why they were renamed: the test above fails for them."""
    assert should_hide_value_for_key(name)


def test_a_log_line_keeps_the_cache_settings_once_airflow_masked_the_extra():
    """What Airflow does with a connection's extra when a task reads it, then a task's log line."""
    line = "writing to local disk /srv/carto-cache, fleet cache at redis://cachehost:6379/1"
    new = _masked(EXTRA)
    old = _masked({old_name: EXTRA[new_name] for old_name, new_name in DEPRECATED_EXTRAS.items()})
    assert new.redact(line) == line
    assert "***" in old.redact(line)  # the masker does hide the old names' values


def test_the_new_names_configure_the_hook(monkeypatch, carto_emulator):
    conn = carto_emulator.airflow_connection(**EXTRA)
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(conn))
    settings = CartoAuthHook().settings
    assert (settings.cache_dir, settings.cache_backend, settings.cache_redis_url) == tuple(EXTRA.values())


def test_the_old_names_still_work_with_a_deprecation_warning(monkeypatch, carto_emulator):
    old = {"token_cache_dir": "/srv/old", "token_cache": "redis", "token_cache_redis_url": "redis://h:1/0"}
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(carto_emulator.airflow_connection(**old)))
    with pytest.warns(DeprecationWarning) as warned:
        settings = CartoAuthHook().settings
    assert (settings.cache_dir, settings.cache_backend, settings.cache_redis_url) == tuple(old.values())
    messages = " ".join(str(w.message) for w in warned)
    for old_name, new_name in DEPRECATED_EXTRAS.items():
        assert (
            f"the extra {old_name!r} is deprecated" in messages and f"rename it to {new_name!r}" in messages
        )
    assert "2.0" in messages


def test_a_new_name_wins_over_an_old_one(monkeypatch, carto_emulator):
    conn = carto_emulator.airflow_connection(cache_dir="/srv/new", token_cache_dir="/srv/old")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(conn))
    with pytest.warns(DeprecationWarning):
        assert CartoAuthHook().settings.cache_dir == "/srv/new"


def test_an_old_name_as_a_hook_argument_still_works(monkeypatch, carto_emulator, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", carto_emulator.airflow_connection_json())
    with pytest.warns(DeprecationWarning), caplog.at_level(logging.WARNING):
        assert CartoAuthHook(token_cache_dir="/srv/arg").settings.cache_dir == "/srv/arg"
