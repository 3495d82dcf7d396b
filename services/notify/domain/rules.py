"""The notification rules file: event type -> recipients -> channels -> Jinja2 templates.

Read from TOML text (the caller reads the file). Every mistake is refused with the file, the
rule, the key and what is accepted. Templates are compiled in a sandbox with StrictUndefined;
a template naming a field its audience may not see (a staff message naming the customer) is
refused when the file is read, so personal data cannot leak by a typo.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from services.notify.domain.customers import CUSTOMER
from services.notify.domain.events import EVENTS, allowed_fields
from shared.auth import ROLES

INBOX, EMAIL, WEBHOOK, WECOM, DINGTALK = "inbox", "email", "webhook", "wecom", "dingtalk"
CHANNELS: tuple[str, ...] = (INBOX, EMAIL, WEBHOOK, WECOM, DINGTALK)
URL_CHANNELS: tuple[str, ...] = (WEBHOOK, WECOM, DINGTALK)
# Chat robots post into a staff group chat: never a customer's message.
STAFF_ONLY_CHANNELS = frozenset({WECOM, DINGTALK})
# Recipients taken from the event: the approval level's role, the role escalated to.
EVENT_ROLES = {"approver": "role", "escalate_to": "escalate_to"}

RULE_KEYS = ("name", "description", "event", "recipients", "channels", "subject", "body",
             "html_body", "webhook_url", "wecom_url", "dingtalk_url")
TOP_KEYS = ("version", "staff_email", "rule")

TEXT_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                keep_trailing_newline=False)
HTML_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class RulesError(ValueError):
    """A rules file that cannot be used, saying where and what is accepted."""


@dataclass(frozen=True, slots=True)
class NotificationRule:
    """When ``event_type`` happens, tell ``recipients`` over ``channels`` with the templates."""

    name: str
    event_type: str
    recipients: tuple[str, ...]
    channels: tuple[str, ...]
    subject: Template = field(compare=False)
    body: Template = field(compare=False)
    html_body: Template | None = field(default=None, compare=False)
    urls: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def for_customer_only(self) -> bool:
        return self.recipients == (CUSTOMER,)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All rules of one file plus the staff email addresses (role -> address)."""

    rules: tuple[NotificationRule, ...]
    staff_email: Mapping[str, str] = field(default_factory=dict)
    version: str = ""
    source: str = "<rules>"

    def for_event(self, event_type: str) -> list[NotificationRule]:
        return [rule for rule in self.rules if rule.event_type == event_type]

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(rule.event_type for rule in self.rules)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """A rule set from TOML text; RulesError naming the file, rule and key on any mistake."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"{source}: not valid TOML: {error}") from None
    return rules_from_document(document, source)


def rules_from_document(document: Mapping[str, Any], source: str = "<rules>") -> RuleSet:
    unknown = sorted(set(document) - set(TOP_KEYS))
    if unknown:
        raise RulesError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(TOP_KEYS)}")
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        raise RulesError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules = tuple(_rule(raw, index, source) for index, raw in enumerate(raw_rules, start=1))
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RulesError(f"{source}: rule name(s) used twice: {', '.join(duplicates)}")
    return RuleSet(rules, _staff_email(document.get("staff_email", {}), source),
                   str(document.get("version", "")), source)


def _staff_email(raw: object, source: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RulesError(f"{source}: [staff_email] must be a table of role = \"address\"")
    for role, address in raw.items():
        if role not in ROLES:
            raise RulesError(f"{source}: [staff_email] role {role!r} unknown; accepted: "
                             f"{', '.join(ROLES)}")
        if not isinstance(address, str) or "@" not in address:
            raise RulesError(f"{source}: [staff_email] {role}: {address!r} is not an email address")
    return dict(raw)


def _rule(raw: Mapping[str, Any], index: int, source: str) -> NotificationRule:
    where = f"{source}: rule #{index}"
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{where}: key 'name' is required (a short unique text)")
    where = f"{source}: rule #{index} ({name})"
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(RULE_KEYS)}")
    event_type = raw.get("event")
    if event_type not in EVENTS:
        raise RulesError(f"{where}: key 'event': {event_type!r} is not an event notify can tell "
                         f"about; accepted: {', '.join(EVENTS)}")
    recipients = _recipients(raw.get("recipients"), event_type, where)
    channels = _texts(raw.get("channels", [INBOX]), "channels", where)
    for channel in channels:
        if channel not in CHANNELS:
            raise RulesError(f"{where}: key 'channels': {channel!r} is not a channel; "
                             f"accepted: {', '.join(CHANNELS)}")
        if channel in STAFF_ONLY_CHANNELS and CUSTOMER in recipients:
            raise RulesError(f"{where}: key 'channels': {channel} posts into a staff group chat, "
                             f"so it may not carry a customer's notification; for customers use "
                             f"{INBOX}, {EMAIL} or {WEBHOOK}")
    urls = {}
    for channel in URL_CHANNELS:
        url = raw.get(f"{channel}_url")
        if url is None:
            continue
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RulesError(f"{where}: key '{channel}_url': {url!r} must be an http(s) URL")
        urls[channel] = url
    # A rule with customers and staff together is held to the staff rule: nothing personal.
    for_customer = set(recipients) == {CUSTOMER}
    allowed = allowed_fields(event_type, for_customer=for_customer)
    templates = {key: _template(raw, key, where, allowed, required=key != "html_body")
                 for key in ("subject", "body", "html_body")}
    subject, body = templates["subject"], templates["body"]
    assert subject is not None and body is not None
    return NotificationRule(name=name, event_type=event_type, recipients=recipients,
                            channels=tuple(dict.fromkeys(channels)), subject=subject, body=body,
                            html_body=templates["html_body"], urls=urls,
                            description=str(raw.get("description", "")))


def _texts(value: object, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}: key '{key}' must be a non-empty list of texts")
    return tuple(value)


def _recipients(value: object, event_type: str, where: str) -> tuple[str, ...]:
    recipients = _texts(value, "recipients", where)
    role_fields = EVENTS[event_type].role_fields
    for recipient in recipients:
        if recipient == CUSTOMER:
            continue
        if recipient in EVENT_ROLES:
            if EVENT_ROLES[recipient] not in role_fields:
                raise RulesError(f"{where}: key 'recipients': {recipient!r} only applies to "
                                 f"approval events (order.approval_requested/escalated)")
            continue
        kind, _, role = recipient.partition(":")
        if kind != "role" or role not in ROLES:
            raise RulesError(
                f"{where}: key 'recipients': {recipient!r} is not a recipient; accepted: "
                f"'customer' (the order's customer), 'role:<role>' with a role of "
                f"{', '.join(ROLES)}, or for approvals 'approver' / 'escalate_to'")
    return tuple(dict.fromkeys(recipients))


def _template(raw: Mapping[str, Any], key: str, where: str, allowed: frozenset[str], *,
              required: bool) -> Template | None:
    source = raw.get(key)
    if source is None and not required:
        return None
    if not isinstance(source, str) or (required and not source.strip()):
        raise RulesError(f"{where}: key '{key}' is required: a Jinja2 template text")
    env = HTML_ENV if key == "html_body" else TEXT_ENV
    try:
        parsed = env.parse(source)
    except TemplateSyntaxError as error:
        raise RulesError(f"{where}: key '{key}': template line {error.lineno}: {error.message}"
                         ) from None
    used = meta.find_undeclared_variables(parsed)
    refused = sorted(used - allowed)
    if refused:
        audience = "customer" if allowed_fields_for_customer(allowed) else "staff"
        raise RulesError(
            f"{where}: key '{key}': template uses {', '.join(refused)}, which a {audience} "
            f"notification of {raw.get('event')} may not use; allowed: {', '.join(sorted(allowed))}")
    return env.from_string(source)


def allowed_fields_for_customer(allowed: frozenset[str]) -> bool:
    return "customer_name" in allowed


def rule_summary(rules: Sequence[NotificationRule]) -> list[tuple[str, str, str, str]]:
    """(name, event, recipients, channels) per rule, for listings."""
    return [(r.name, r.event_type, ", ".join(r.recipients), ", ".join(r.channels)) for r in rules]
