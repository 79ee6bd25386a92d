"""One cache directory: every path of the settings tree left at its default follows
`cache_dir`; a path set on its own stays where it was set."""

from __future__ import annotations

from pathlib import Path

from deployments.settings import Settings


def test_every_default_path_follows_the_cache_dir(tmp_path):
    settings = Settings(cache_dir=tmp_path)
    paths = [settings.models_dir, settings.auth.keys_db, settings.router.model_dir, settings.shadow.store,
             settings.adapters.registry_dir, settings.retrieval.kb, settings.retrieval.kb_source,
             settings.retrieval.reranker]
    assert all(path.is_relative_to(tmp_path) for path in paths), paths
    assert settings.shadow.store == tmp_path / "shadow.sqlite"


def test_a_path_set_on_its_own_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GATEWAY_SHADOW__STORE", str(tmp_path / "elsewhere.sqlite"))
    settings = Settings()
    assert settings.shadow.store == tmp_path / "elsewhere.sqlite"
    assert settings.auth.keys_db == tmp_path / "cache" / "keys.sqlite"


def test_the_default_is_the_user_cache(monkeypatch):
    for name in ("GATEWAY_CACHE_DIR", "GATEWAY_AUTH__KEYS_DB"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().auth.keys_db == Path.home() / ".cache" / "routing-gateway" / "keys.sqlite"
