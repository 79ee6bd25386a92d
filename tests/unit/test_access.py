"""Open or closed, decided once at start-up (gateway.access): the table of decisions, the
refusal to start a gateway nobody could call, and a key store that serving never creates."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from gateway.access import Access, AccessRefused, KeyCensus, decide_access, is_loopback
from gateway.keys import KeyStore, KeyStoreMissing, census
from gateway.settings import AuthSettings

NONE = KeyCensus()
EMPTY = KeyCensus(exists=True)
REVOKED = KeyCensus(exists=True, total=2, active=0)
ACTIVE = KeyCensus(exists=True, total=2, active=1)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "gateway.example.com", "", None, "localhost.evil"])
def test_other_addresses(host):
    assert not is_loopback(host)


@pytest.mark.parametrize(("open_", "host", "keys", "expected"), [
    (None, "127.0.0.1", NONE, Access(open=True, local=True)),       # the first `make run`
    (None, "127.0.0.1", EMPTY, Access(open=True, local=True)),
    (None, "127.0.0.1", ACTIVE, Access(open=False, local=True)),
    (None, "0.0.0.0", ACTIVE, Access(open=False, local=False)),
    (True, "0.0.0.0", NONE, Access(open=True, local=False)),         # said on purpose
    (True, "127.0.0.1", ACTIVE, Access(open=True, local=True)),
    (False, "127.0.0.1", ACTIVE, Access(open=False, local=True)),
])
def test_decisions(open_, host, keys, expected):
    access = decide_access(AuthSettings(open=open_), host, keys)
    assert (access.open, access.local) == (expected.open, expected.local)


@pytest.mark.parametrize(("open_", "host", "keys", "says"), [
    (None, "0.0.0.0", NONE, "not loopback"),       # a public bind never opens by itself
    (None, "0.0.0.0", EMPTY, "not loopback"),
    (None, None, NONE, "unknown address"),         # Serve's bind address could not be read
    (None, "127.0.0.1", REVOKED, "revoked"),       # revoking the last key never reopens
    (False, "127.0.0.1", NONE, "auth.open is false"),
])
def test_a_gateway_nobody_could_call_refuses_to_start_naming_the_setting(open_, host, keys, says):
    with pytest.raises(AccessRefused) as refused:
        decide_access(AuthSettings(open=open_), host, keys)
    message = str(refused.value)
    assert says in message and "GATEWAY_AUTH__OPEN=true" in message and "gateway keys create" in message


def test_allowed_hosts_default_to_the_loopback_names_on_a_loopback_bind():
    access = decide_access(AuthSettings(), "127.0.0.5", NONE)
    assert set(access.allowed_hosts or ()) == {"localhost", "127.0.0.1", "::1", "127.0.0.5"}
    assert "testserver" not in (access.allowed_hosts or ())
    assert decide_access(AuthSettings(), "0.0.0.0", ACTIVE).allowed_hosts is None
    configured = AuthSettings(allowed_hosts=["API.example.com", "*.internal"])
    assert decide_access(configured, "0.0.0.0", ACTIVE).allowed_hosts == ("api.example.com", "*.internal")
    assert decide_access(AuthSettings(allowed_hosts=["*"]), "127.0.0.1", NONE).allowed_hosts is None


def test_settings_from_the_environment(monkeypatch):
    from deployments.settings import Settings

    monkeypatch.setenv("GATEWAY_AUTH__OPEN", "true")
    monkeypatch.setenv("GATEWAY_AUTH__DEFAULT_MAX_CONCURRENT", "none")
    monkeypatch.setenv("GATEWAY_AUTH__ALLOWED_HOSTS", '["gw.example.com"]')
    monkeypatch.setenv("GATEWAY_LIMITS__MAX_IN_FLIGHT", "64")
    settings = Settings()
    assert settings.auth.open is True and settings.auth.default_max_concurrent is None
    assert settings.auth.allowed_hosts == ["gw.example.com"] and settings.limits.max_in_flight == 64
    monkeypatch.setenv("GATEWAY_AUTH__OPEN", "auto")
    assert Settings().auth.open is None
    assert AuthSettings().open is None and AuthSettings().default_max_concurrent == 16


# ---- the key store: serving never creates it ---------------------------------------------


def test_serving_never_creates_a_missing_store(tmp_path):
    path = tmp_path / "state" / "keys.sqlite"
    with pytest.raises(KeyStoreMissing, match="gateway keys create"):
        KeyStore(path, create=False)
    assert not path.exists() and not path.parent.exists()
    assert census(path) == KeyCensus() and not path.exists()


def test_census_counts_every_key_and_the_active_ones(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite")
    assert census(store.path) == EMPTY
    record, _ = store.create("a")
    store.create("b")
    store.revoke(record.id)
    assert census(store.path) == KeyCensus(exists=True, total=2, active=1)
    (tmp_path / "empty.sqlite").touch()
    assert census(tmp_path / "empty.sqlite") == EMPTY


def test_a_store_from_before_gets_the_new_columns(tmp_path):
    path = tmp_path / "keys.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
                   "role TEXT NOT NULL, rpm INTEGER, tpm INTEGER, created_at TEXT NOT NULL, revoked_at TEXT)")
        db.execute("INSERT INTO keys VALUES ('k1', 'old', 'h', 'user', 5, NULL, '2026-01-01T00:00:00+00:00', NULL)")
    store = KeyStore(path, create=False)
    (old,) = store.list()
    assert old.max_concurrent is None and old.switches == () and old.rpm == 5
    record, secret = store.create("new", max_concurrent=3, switches=("gate", "gate"))
    found = store.lookup(secret)
    assert found is not None and found.max_concurrent == 3 and found.switches == ("gate",)


def test_the_ingress_opens_an_existing_store_only(tmp_path):
    from deployments.ingress import _authenticator

    settings = AuthSettings(keys_db=tmp_path / "keys.sqlite")
    with pytest.raises(KeyStoreMissing):
        _authenticator(settings, Access(open=False), None, "replica")
    assert not settings.keys_db.exists()
    open_without_store, polls = _authenticator(settings, Access(open=True, local=True), None, "replica")
    assert not open_without_store.has_keys and not settings.keys_db.exists() and polls == ()


def test_the_app_builder_refuses_a_public_bind_without_keys(tmp_path):
    from deployments.app import build
    from deployments.settings import Settings

    auth = {"keys_db": str(tmp_path / "keys.sqlite")}
    with pytest.raises(AccessRefused, match="0.0.0.0"):
        build(Settings(auth=auth, http={"host": "0.0.0.0"}))
    local = build(Settings(auth=auth))._bound_deployment.init_args[1].access
    assert local.open and local.local
    KeyStore(tmp_path / "keys.sqlite").create("app")
    closed = build(Settings(auth=auth))._bound_deployment.init_args[1].access
    assert not closed.open and closed.allowed_hosts is not None


def test_gateway_serve_exits_before_starting_ray(tmp_path, monkeypatch):
    import typer

    from deployments import cli
    from deployments.settings import Settings

    monkeypatch.setattr("ray.init", lambda *a, **k: pytest.fail("Ray must not start"))
    with pytest.raises(typer.Exit) as exited:
        cli.run(Settings(auth={"keys_db": str(tmp_path / "keys.sqlite")}, http={"host": "0.0.0.0"}))
    assert exited.value.exit_code == 2
