import pytest
from pydantic import ValidationError

from gateway.live_config import LiveConfig
from deployments.settings import Settings


def test_embedded_defaults():
    settings = Settings()
    assert settings.small.quantization == "int8_per_channel_weight_only"
    assert settings.small.enable_lora and settings.large.quantization is None


def test_nested_environment_overrides(monkeypatch):
    monkeypatch.setenv("GATEWAY_LARGE__MODEL", "/models/llama-70b")
    monkeypatch.setenv("GATEWAY_HTTP__PORT", "9000")
    settings = Settings()
    assert settings.large.model == "/models/llama-70b" and settings.http.port == 9000


def test_init_kwargs_beat_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_APP_NAME", "from-env")
    assert Settings(app_name="from-args").app_name == "from-args"


def test_live_config_rejects_unknown_keys_and_bad_values():
    parsed = LiveConfig.parse({"routing": {"learned": {"thresholds": {"probability": 0.3}}}})
    assert parsed.routing.learned.thresholds.probability == 0.3
    with pytest.raises(ValidationError):
        LiveConfig.parse({"routing": {"baseline": {"threshold": 3}}})
    with pytest.raises(ValidationError):
        LiveConfig.parse({"routnig": {}})


def test_served_name_follows_a_configured_model(monkeypatch):
    monkeypatch.setenv("GATEWAY_SMALL__MODEL", "Qwen/Qwen2.5-1.5B-Instruct-AWQ")
    settings = Settings()
    assert settings.small.served_name == "Qwen2.5-1.5B-Instruct-AWQ"
    assert settings.small.enable_lora  # other tier defaults stay


def test_admin_key_and_adapter_settings_from_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_ADMIN__API_KEY", "s3cret")
    monkeypatch.setenv("GATEWAY_ADAPTERS__MIN_SIMILARITY", "0.5")
    settings = Settings()
    assert settings.admin.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)  # never logged by accident
    assert settings.adapters.min_similarity == 0.5 and settings.adapters.retention_days == 30


def test_admin_is_off_by_default():
    assert Settings().admin.api_key is None


@pytest.mark.parametrize("raw", ["", "none", "None"])
def test_quantization_can_be_switched_off_from_the_environment(monkeypatch, raw):
    monkeypatch.setenv("GATEWAY_SMALL__QUANTIZATION", raw)
    assert Settings().small.quantization is None
