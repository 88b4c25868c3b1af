"""The API's settings: where chat answers, how long its answers are trusted, which console
origins may send changes."""

import pytest
from leads.config import Settings
from pydantic import ValidationError


def test_defaults_point_at_chats_dev_port_with_a_short_cache():
    settings = Settings(environment="test")
    assert settings.chat_url == "http://127.0.0.1:8003"
    assert settings.session_cache_s == 15
    assert settings.console_origins == ()


def test_console_origins_come_comma_separated_and_normalised(monkeypatch):
    monkeypatch.setenv(
        "LEADS_CONSOLE_ORIGINS", "https://Console.Example.com/, http://127.0.0.1:8003"
    )
    assert Settings(environment="test").console_origins == (
        "https://console.example.com",
        "http://127.0.0.1:8003",
    )


@pytest.mark.parametrize("origin", ["console.example.com", "https://x.example/console", "ftp://x"])
def test_an_origin_that_is_not_one_is_refused(origin):
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(environment="test", console_origins=origin)


def test_chat_url_must_be_http():
    with pytest.raises(ValidationError, match="chat_url"):
        Settings(environment="test", chat_url="chat:8003")
