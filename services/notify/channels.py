"""Delivering one notification over its channel: SMTP email, signed webhooks, chat robots.

Every channel raises DeliveryError with a readable reason when the other side did not accept
the message; the sender retries and finally records ``notification.failed`` with that reason.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from services.notify.config import NotifyConfig
from services.notify.domain import DINGTALK, EMAIL, INBOX, WEBHOOK, WECOM
from shared.clock import Clock

SIGNATURE_HEADER = "X-OMS-Signature"


class DeliveryError(Exception):
    """The channel did not accept the message (the reason is kept as the failure reason)."""


@dataclass(frozen=True, slots=True)
class Message:
    notification_id: str
    source_event_id: str
    source_event_type: str
    order_id: str | None
    recipient: str
    channel: str
    target: str
    subject: str
    body: str
    html_body: str | None = None

    def document(self) -> dict[str, Any]:
        """The JSON a signed webhook receives."""
        return {"notification_id": self.notification_id, "source_event_id": self.source_event_id,
                "event_type": self.source_event_type, "order_id": self.order_id,
                "recipient": self.recipient, "subject": self.subject, "body": self.body}


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``, the X-OMS-Signature header value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robots' ``sign``: base64 of HMAC-SHA256(secret, "<timestamp>\\n<secret>")."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Channels:
    """The channels this process delivers over, configured from the environment."""

    def __init__(self, config: NotifyConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock

    async def deliver(self, message: Message) -> None:
        if message.channel == INBOX:
            return  # the stored row is the inbox
        if message.channel == EMAIL:
            await self._email(message)
        elif message.channel == WEBHOOK:
            await self._webhook(message)
        elif message.channel in (WECOM, DINGTALK):
            await self._robot(message)
        else:
            raise DeliveryError(f"channel {message.channel!r} is not known to this service")

    # ---- email ---------------------------------------------------------------------------

    async def _email(self, message: Message) -> None:
        host = self.config.smtp_host
        if not host:
            raise DeliveryError("email is not set up (OMS_SMTP_HOST unset)")
        mail = EmailMessage()
        mail["From"] = self.config.smtp_from
        mail["To"] = message.target
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(self.clock.now().timestamp(), usegmt=True)
        # The same notification always has the same Message-ID: a receiver can drop a resend.
        mail["Message-ID"] = f"<{message.notification_id}@oms.notify>"
        mail.set_content(message.body)
        if message.html_body:
            mail.add_alternative(message.html_body, subtype="html")
        try:
            await asyncio.to_thread(self._send_mail, host, mail)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"SMTP {host}:{self.config.smtp_port}: "
                                f"{type(error).__name__}: {error}") from None

    def _send_mail(self, host: str, mail: EmailMessage) -> None:
        with smtplib.SMTP(host, self.config.smtp_port,
                          timeout=self.config.smtp_timeout_seconds) as smtp:
            smtp.send_message(mail)

    # ---- webhooks ------------------------------------------------------------------------

    async def _webhook(self, message: Message) -> None:
        secret = self.config.webhook_secret
        if not secret:
            raise DeliveryError("webhook is not set up (OMS_WEBHOOK_SECRET unset)")
        body = json.dumps(message.document(), ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
                   "X-OMS-Notification-Id": message.notification_id}
        await self._post(message.target, body, headers, {})

    async def _robot(self, message: Message) -> None:
        content = f"{message.subject}\n\n{message.body}"
        body = json.dumps({"msgtype": "text", "text": {"content": content}},
                          ensure_ascii=False).encode()
        params: dict[str, str] = {}
        secret = self.config.dingtalk_secret
        if message.channel == DINGTALK and secret:
            timestamp = int(self.clock.now().timestamp() * 1000)
            params = {"timestamp": str(timestamp), "sign": dingtalk_sign(secret, timestamp)}
        answer = await self._post(message.target, body, {"Content-Type": "application/json"}, params)
        try:
            reply = json.loads(answer) if answer else {}
        except ValueError:
            reply = {}
        if isinstance(reply, dict) and reply.get("errcode", 0) != 0:
            raise DeliveryError(f"{message.channel} robot refused: errcode {reply.get('errcode')}: "
                                f"{reply.get('errmsg', '')}")

    async def _post(self, url: str, body: bytes, headers: dict[str, str], params: dict[str, str]
                    ) -> str:
        if not url:
            raise DeliveryError("no URL to post to")
        try:
            # Keep the URL's own query (a robot's access token) and add ours to it.
            target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
            async with httpx.AsyncClient(timeout=self.config.http_timeout_seconds) as client:
                response = await client.post(target, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"POST {url}: {type(error).__name__}: {error}") from None
        if not response.is_success:
            raise DeliveryError(f"POST {url}: HTTP {response.status_code}: {response.text[:200]}")
        return response.text
