"""Every ``[carto]`` option the provider reads is declared in its provider info, as the real CLI shows."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from carto_provider.provider_info import CONFIG_OPTIONS
from tests.conftest import airflow_cli

PACKAGE = Path(__file__).resolve().parents[2] / "carto_provider"


def airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CARTO__")}
    return subprocess.run(
        [airflow_cli(), *args], capture_output=True, text=True, timeout=120, env={**clean, **env}
    )


def test_every_option_the_code_reads_is_declared():
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)
    read = set(re.findall(r'conf\.get\w*\(\s*"carto",\s*"(\w+)"', source))
    read |= set(re.findall(r'_carto_option\("(\w+)"\)', source))
    assert read == set(CONFIG_OPTIONS)
    for name, option in CONFIG_OPTIONS.items():
        assert option["description"] and "default" in option, name


def test_config_get_value_answers_without_a_warning():
    done = airflow("config", "get-value", "carto", "token_cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "local"
    assert "token_cache" not in done.stderr  # no "option not found/deprecated" warning about it
    done = airflow("config", "get-value", "carto", "poll_interval", AIRFLOW__CARTO__POLL_INTERVAL="2.5")
    assert done.stdout.strip().splitlines()[-1] == "2.5"


def test_config_list_shows_the_carto_section():
    done = airflow("config", "list", "--section", "carto", "--include-descriptions", "--color", "off")
    assert done.returncode == 0, done.stderr
    assert "[carto]" in done.stdout
    for name in CONFIG_OPTIONS:
        assert re.search(rf"^#? ?{name} = ", done.stdout, re.MULTILINE), name
    assert "one token shared by every worker" in done.stdout
