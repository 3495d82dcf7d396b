"""Notify's configuration from the environment: the rules file, SMTP, webhook secrets, retries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notify.domain import (
    DINGTALK,
    WEBHOOK,
    WECOM,
    DeliverySetup,
    RetryPolicy,
    RulesError,
    RuleSet,
    parse_rules,
)

EXAMPLE_RULES = Path(__file__).resolve().parents[2] / "deploy" / "notify-rules.example.toml"


class NotifyConfig(BaseSettings):
    """``OMS_NOTIFY_*``, ``OMS_SMTP_*``, ``OMS_WEBHOOK_SECRET``, ``OMS_DINGTALK_SECRET``."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    notify_rules_file: Path = EXAMPLE_RULES
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "oms@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_secret: str | None = None
    dingtalk_secret: str | None = None
    notify_webhook_url: str | None = None
    notify_wecom_url: str | None = None
    notify_dingtalk_url: str | None = None
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_max_attempts: int = Field(default=5, ge=1)
    notify_retry_seconds: float = Field(default=30.0, gt=0)
    notify_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    notify_send_poll_seconds: float = Field(default=1.0, gt=0)
    notify_send_batch: int = Field(default=100, ge=1)

    def delivery_setup(self) -> DeliverySetup:
        urls = {channel: url for channel, url in (
            (WEBHOOK, self.notify_webhook_url), (WECOM, self.notify_wecom_url),
            (DINGTALK, self.notify_dingtalk_url)) if url}
        return DeliverySetup(email=bool(self.smtp_host), webhook_secret=bool(self.webhook_secret),
                             default_urls=urls)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.notify_max_attempts,
                           base=timedelta(seconds=self.notify_retry_seconds),
                           cap=timedelta(seconds=self.notify_retry_cap_seconds))


def load_rules(path: Path) -> RuleSet:
    """The rules of a file; RulesError (naming the file) when it is missing or wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError(f"{path}: cannot read the notification rules file ({error.strerror}); "
                         "set OMS_NOTIFY_RULES_FILE to a readable TOML file") from None
    return parse_rules(text, str(path))
