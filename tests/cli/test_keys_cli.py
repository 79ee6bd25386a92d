"""`gateway keys`: roles (user, admin, metrics), per-key concurrency, the client switches a key
may turn off; only `create` makes the store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from deployments.commands import app
from gateway.keys import KeyStore


@pytest.fixture
def keys_db(tmp_path, monkeypatch):
    path = tmp_path / "state" / "keys.sqlite"
    monkeypatch.setenv("GATEWAY_AUTH__KEYS_DB", str(path))
    return path


def keys(*args: str):
    return CliRunner().invoke(app, ["keys", *args])


def test_create_with_a_switch_a_concurrency_cap_and_a_role(keys_db):
    made = keys("create", "--name", "agent", "--allow-switch", "gate", "--max-concurrent", "4")
    assert made.exit_code == 0, made.output
    key_id, secret = made.output.split()
    record = KeyStore(keys_db, create=False).lookup(secret)
    assert record is not None and record.id == key_id and record.role == "user"
    assert record.switches == ("gate",) and record.max_concurrent == 4
    scrape = keys("create", "--name", "prometheus", "--role", "metrics")
    assert scrape.exit_code == 0, scrape.output
    listed = keys("list").output
    assert "switches=gate" in listed and "max_concurrent=4" in listed and "metrics" in listed


@pytest.mark.parametrize("args", [
    ("--allow-switch", "stream"), ("--role", "root"), ("--admin", "--role", "metrics"), ("--max-concurrent", "0"),
])
def test_bad_options_are_refused(keys_db, args):
    result = keys("create", "--name", "x", *args)
    assert result.exit_code == 2 and not keys_db.exists()


def test_list_and_revoke_never_create_the_store(keys_db):
    for result in (keys("list"), keys("revoke", "abc")):
        assert result.exit_code == 2 and "no API key store" in result.output
    assert not keys_db.exists()
