"""Every MQTT topic edge uses, built (and parsed) here and nowhere else.

Under the configured prefix (``mqtt.topic_prefix``, default ``edge/v1``):

- ``<prefix>/<device>/alert``       alerts (QoS 1)
- ``<prefix>/<device>/status``      retained online/offline status, with the last will
- ``<prefix>/<device>/heartbeat``   retained, periodic
- ``<prefix>/<device>/review``      dispatch's review decisions for the device
- ``<prefix>/<device>/ack``         dispatch's end-to-end acknowledgements (alerts it stored)
- ``<prefix>/<device>/sync``        retained report of the device's watchlist sync
- ``<prefix>/watchlist/<list>/manifest``         the hub's retained announcement
- ``<prefix>/watchlist/<list>/chunk/<sha256>/<n>`` retained chunks of a transfer
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_KINDS = ("alert", "status", "heartbeat", "review", "ack", "sync")
SHARE_LEVEL = "$share"
WATCHLIST_LEVEL = "watchlist"


def _root(prefix: str) -> str:
    return prefix.rstrip("/")


@dataclass(frozen=True)
class DeviceTopics:
    """The topics of one device (``device_id`` may be '+' to subscribe to every device)."""

    prefix: str
    device_id: str

    def _topic(self, kind: str) -> str:
        return f"{_root(self.prefix)}/{self.device_id}/{kind}"

    @property
    def alert(self) -> str:
        return self._topic("alert")

    @property
    def status(self) -> str:
        return self._topic("status")

    @property
    def heartbeat(self) -> str:
        return self._topic("heartbeat")

    @property
    def review(self) -> str:
        return self._topic("review")

    @property
    def ack(self) -> str:
        return self._topic("ack")

    @property
    def sync(self) -> str:
        return self._topic("sync")


def every_device(prefix: str, kind: str) -> str:
    """The wildcard subscription to one kind of message of every device."""
    return DeviceTopics(prefix, "+")._topic(kind)


def shared(group: str, topic: str) -> str:
    """An MQTT 5 shared subscription: the broker gives each message to one member of ``group``."""
    return f"{SHARE_LEVEL}/{group}/{topic}"


def parse_device_topic(topic: str, prefix: str) -> tuple[str, str] | None:
    """``(device_id, kind)`` of a device topic, or None."""
    head = f"{_root(prefix)}/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 2 or parts[1] not in DEVICE_KINDS:
        return None
    return parts[0], parts[1]


@dataclass(frozen=True)
class ListTopics:
    """The topics of one watchlist."""

    prefix: str
    list_id: str

    @property
    def base(self) -> str:
        return f"{_root(self.prefix)}/{WATCHLIST_LEVEL}/{self.list_id}"

    @property
    def manifest(self) -> str:
        return f"{self.base}/manifest"

    def chunk(self, transfer: str, n: int) -> str:
        return f"{self.base}/chunk/{transfer}/{n}"


def parse_chunk_topic(topic: str, prefix: str) -> tuple[str, str, int] | None:
    """``(list_id, transfer sha256, n)`` of a chunk topic, or None."""
    head = f"{_root(prefix)}/{WATCHLIST_LEVEL}/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 4 or parts[1] != "chunk" or not parts[3].isdigit():
        return None
    return parts[0], parts[2], int(parts[3])
