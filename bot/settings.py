"""Settings from the environment and `.env`; a missing one stops start-up with one line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class LogSettings(BaseSettings):
    """What logging needs, readable before (and without) the Slack settings."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        word = value.strip()
        if word.upper() in LOG_LEVELS:
            return word.upper()
        return word.lower() if word.lower() in LOG_FORMATS else value


class DatabaseSettings(BaseSettings):
    """What the database-only commands (`changes show`, `audit`, `calendar`, `db upgrade`)
    need: no Slack credentials."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./changebot.db"
    changebot_policy: str = "./policy.yml"


class Settings(DatabaseSettings, LogSettings):
    slack_bot_token: str = Field(min_length=1)
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    pagerduty_api_token: str = ""
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_routing_key: str = ""
    # With several replicas, run `changebot db upgrade` once (a migration job) and set this
    # to false: `serve` then only checks that the schema is current.
    changebot_auto_migrate: bool = True


class SettingsError(Exception):
    """One readable line naming every missing or bad setting."""


def load_log_settings() -> LogSettings:
    try:
        return LogSettings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            allowed = LOG_LEVELS if name == "log_level" else LOG_FORMATS
            problems.append(f"{name.upper()} must be one of {', '.join(allowed)} (not {err['input']!r})")
        raise SettingsError(f"changebot cannot start: {'; '.join(problems)}") from None


def load_settings(*, require: tuple[str, ...] = ()) -> Settings:
    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        names = sorted({str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]})
        raise SettingsError(
            f"changebot cannot start: set {', '.join(names)} (in the environment or .env)"
        ) from None
    missing = [name.upper() for name in require if not getattr(settings, name)]
    if missing:
        raise SettingsError(f"changebot cannot start: set {', '.join(missing)} (in the environment or .env)")
    if not settings.slack_api_url.endswith("/"):
        settings.slack_api_url += "/"
    return settings
