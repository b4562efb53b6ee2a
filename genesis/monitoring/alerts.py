"""Alerts on change: tell a tracker's owner when it fails, recovers or becomes late.

Channels are configured in genesis.yaml (`alerts.channels`: Slack, email, generic
webhook) and owners are mapped to channels (`alerts.owners`, `alerts.default`);
sending is apprise's job. A channel's URL may hold a secret (`{{ env.NAME }}`): it is
rendered only to send, never printed; warnings name the channel, not its URL. An alert
that cannot be sent is a warning in the refresh summary, never a failed refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from ..errors import ErrorCollector, GenesisError, Location, did_you_mean
from ..project.config import render_value
from ..project.loader import YamlMap
from ..project.model import Project

log = logging.getLogger(__name__)

SCHEMES = {"slack": ("https",), "email": ("mailto", "mailtos"), "webhook": ("http", "https")}
TIMEOUT_SECONDS = 5  # connect and read, per channel: an unreachable channel must not stall a refresh


@dataclass(frozen=True)
class Change:
    """One state change of one tracker: what the owner is told."""

    tracker: str
    owner: str | None
    previous: str | None  # ok | failed | late | None (first run)
    state: str  # ok | failed | late | vanished (a for_each part)
    target: str
    stage: str | None = None
    error: str | None = None
    location: str | None = None
    run_url: str | None = None

    @property
    def title(self) -> str:
        """The notification's title, e.g. "Genesis: tracker 'x' recovered"."""
        word = {"failed": "failed", "late": "is late", "ok": "recovered", "vanished": "vanished"}[self.state]
        return f"Genesis: tracker '{self.tracker}' {word}"

    @property
    def body(self) -> str:
        """The notification's plain-text body: what happened and where, the owner, a link to the run."""
        if self.state == "failed":
            lines = [f"Tracker '{self.tracker}' failed at the {self.stage or 'unknown'} stage "
                     f"on target '{self.target}'; nothing was written."]
            if self.location:
                lines.append(f"Where: {self.location}")
            if self.error:
                lines.append(f"Error: {self.error}")
        elif self.state == "late":
            lines = [f"Tracker '{self.tracker}' is late on target '{self.target}': {self.error}"]
        elif self.state == "vanished":  # a for_each part whose value left (genesis.run.fan_out_refresh)
            lines = [f"Tracker part '{self.tracker}' vanished on target '{self.target}': its value is no longer "
                     f"among the tracker's for_each values. Its destination was kept as it was."]
        else:
            lines = [f"Tracker '{self.tracker}' is ok again on target '{self.target}' (was {self.previous})."]
        if self.owner:
            lines.append(f"Owner: {self.owner}")
        lines.append(f"Run: {self.run_url}" if self.run_url else "Run: (no link: not run in CI)")
        return "\n".join(lines)


def configured(project: Project) -> bool:
    """Whether genesis.yaml defines any alert channel; without one a refresh sends no alerts."""
    return bool(project.config.alerts.get("channels"))


def channels_for(project: Project, owner: str | None) -> list[str]:
    """The channel names an owner is alerted on (`alerts.owners`, else `alerts.default`)."""
    alerts = project.config.alerts
    owners = alerts.get("owners") or {}
    if owner and owner in owners:
        return list(owners[owner])
    return list(alerts.get("default") or [])


def _loc_of(mapping: Mapping[str, Any], key: Any) -> Location:
    """Where `key`'s value is written in genesis.yaml.

    Config.history and Config.alerts are annotated as plain Mappings, but the loader gives
    them (and the mappings inside) as YamlMaps, which know each value's location.
    """
    return cast(YamlMap, mapping).loc_of(key)


def config_problems(project: Project) -> list[GenesisError]:
    """Located errors in `alerts:` and `history:` for `genesis validate`."""
    errors = ErrorCollector()
    config = project.config
    history = config.history
    if "late_after" in history:
        from ..run.durations import parse_duration

        try:
            parse_duration(history["late_after"])
        except GenesisError as exc:
            errors.add(f"history.late_after: {exc.message}", _loc_of(history, "late_after"), exc.hint)
    alerts = config.alerts
    if not alerts:
        return errors.errors
    channels = alerts.get("channels") or {}
    for name, spec in channels.items():
        url = str(spec["url"])
        if "{{" in url:
            continue  # rendered when sending: a missing variable is a warning then
        problem = url_problem(spec["type"], url)
        if problem:
            errors.add(f"alert channel '{name}': {problem}", spec.loc_of("url"),
                       f"{spec['type']} URLs start with {' or '.join(s + '://' for s in SCHEMES[spec['type']])}")
    owners = alerts.get("owners") or {}
    lists = [(f"alerts.owners.{owner}", owners[owner], _loc_of(owners, owner)) for owner in owners]
    if "default" in alerts:
        lists.append(("alerts.default", alerts["default"], _loc_of(alerts, "default")))
    for where, names, loc in lists:
        for i, name in enumerate(names):
            if name not in channels:
                item_loc = names.loc_of(i) if hasattr(names, "loc_of") else loc
                errors.add(f"{where}: unknown alert channel '{name}'", item_loc,
                           did_you_mean(name, channels) or f"channels: {', '.join(channels) or '(none)'}")
    if channels and not alerts.get("default"):
        for tracker in project.trackers.values():
            if tracker.owner and tracker.owner not in owners:
                errors.add(f"owner '{tracker.owner}' of tracker '{tracker.name}' has no alert channel",
                           tracker.locs.get("owner", tracker.loc),
                           did_you_mean(tracker.owner, owners) or "add it under alerts.owners, or set alerts.default")
    return errors.errors


def url_problem(kind: str, url: str) -> str | None:
    """Why a channel URL of type `kind` cannot be sent to (wrong scheme, not a Slack webhook, refused
    by apprise), or None when it can."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES[kind]:
        return f"a {kind} channel needs a {' or '.join(SCHEMES[kind])} URL, not '{scheme or 'no scheme'}:'"
    if kind == "slack" and urlsplit(url).hostname != "hooks.slack.com":
        return "a slack channel takes a Slack incoming-webhook URL (https://hooks.slack.com/services/...)"
    if apprise_url(kind, url) is None:
        return "the URL is not one apprise can send to"
    return None


def apprise_url(kind: str, url: str) -> str | None:
    """The apprise URL of a channel, with bounded timeouts; None when apprise cannot use it."""
    import apprise

    if kind == "webhook":
        parts = urlsplit(url)
        url = ("jsons" if parts.scheme.lower() == "https" else "json") + url[len(parts.scheme):]
    joiner = "&" if "?" in url else "?"
    url = f"{url}{joiner}cto={TIMEOUT_SECONDS}&rto={TIMEOUT_SECONDS}"
    return url if _quietly(lambda: apprise.Apprise().add(url)) else None


def send(project: Project, changes: list[Change]) -> tuple[int, list[str], list[str]]:
    """Send one notification per change to its owner's channels.

    Returns (notifications sent, warnings, rendered secret URLs to redact elsewhere).
    """
    import apprise

    channels = project.config.alerts.get("channels") or {}
    sent, warnings, secrets = 0, [], []
    for change in changes:
        for name in channels_for(project, change.owner):
            spec = channels.get(name)
            if spec is None:
                warnings.append(f"alert for '{change.tracker}' not sent: unknown alert channel '{name}'")
                continue
            try:
                url = render_value(str(spec["url"]), f"url of alert channel '{name}'")
            except GenesisError as exc:
                warnings.append(f"alert for '{change.tracker}' not sent to '{name}': {exc.render()}")
                continue
            secrets.append(url)
            target = apprise_url(spec["type"], url)
            if target is None:
                warnings.append(f"alert for '{change.tracker}' not sent to '{name}': the channel's URL is not valid "
                                f"for type {spec['type']}")
                continue
            notifier = apprise.Apprise()
            notifier.add(target)
            if _quietly(lambda: notifier.notify(title=change.title, body=change.body,
                                                body_format=apprise.NotifyFormat.TEXT)):
                sent += 1
            else:
                warnings.append(f"alert for '{change.tracker}' not delivered to channel '{name}' "
                                f"({spec['type']}): unreachable or refused")
    return sent, warnings, secrets


def _quietly(action) -> bool:
    """Run apprise with its logging silenced: its messages can show a URL, and URLs hold secrets."""
    logger = logging.getLogger("apprise")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return bool(action())
    except Exception:  # noqa: BLE001 - an alert channel never fails the refresh
        return False
    finally:
        logger.setLevel(level)

