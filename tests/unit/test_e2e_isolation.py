"""The end-to-end gateway keeps all its state under the session's own directory: a
developer's key store, shadow store, registry and KB are never read or written by it."""

from __future__ import annotations

from deployments.settings import Settings
from tests.e2e.conftest import isolated_settings_env


def test_e2e_state_lies_under_its_own_directory(tmp_path, monkeypatch):
    user = tmp_path / "user-cache"
    (user / "adapters").mkdir(parents=True)
    (user / "adapters" / "state.json").write_text("{}")
    (user / "kb").mkdir()
    (user / "kb" / "default.sqlite").write_bytes(b"")
    monkeypatch.setenv("GATEWAY_CACHE_DIR", str(user))
    own = tmp_path / "e2e"
    for name, value in isolated_settings_env(own).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    state = [settings.auth.keys_db, settings.shadow.store, settings.adapters.registry_dir, settings.retrieval.kb]
    assert all(path.is_relative_to(own) for path in state), state
    assert (own / "adapters" / "state.json").exists() and (own / "kb" / "default.sqlite").exists()
    # Read-only inputs still come from the user's cache.
    assert settings.models_dir == user / "models" and settings.router.model_dir.is_relative_to(user)
