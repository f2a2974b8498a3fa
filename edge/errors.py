"""The one exception tree. Library errors are translated where they enter (``raise ... from``)."""


class EdgeError(Exception):
    """Base of every error edge raises on purpose; its message is one line meant for a person."""


class TimeFormatError(EdgeError, ValueError):
    """A date or time is not ISO 8601, or is naive where a time zone is needed."""


class ConfigError(EdgeError):
    """The configuration file or a setting is invalid."""


class ModelError(EdgeError):
    """A shipped model file is missing, corrupt (sha256 mismatch) or cannot be loaded."""


class BackendError(EdgeError):
    """A runtime backend is unknown, not installed, or failed to run a model."""


class ImageError(EdgeError):
    """An image or frame is missing, unreadable, corrupt or of an unsupported kind."""


class AlertError(EdgeError):
    """An alert (or a review decision) does not match its JSON schema or cannot be built."""


class OutboxError(EdgeError):
    """The durable alert outbox cannot be opened, read or written (e.g. the disk is full)."""


class BrokerError(EdgeError):
    """The MQTT broker settings are unusable (bad TLS files, bad address) or it cannot be used."""


class AuditError(EdgeError):
    """The audit log cannot be opened, read or appended to."""


class WatchlistError(EdgeError):
    """A watchlist cannot be built, read, installed or searched."""


class BundleError(WatchlistError):
    """A watchlist bundle failed one named check (signature, hash, model, version, ...).

    ``check`` names the failed check, so a refusal can be logged and tested by its kind.
    """

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"watchlist refused ({check} check): {detail}")
        self.check = check
        self.detail = detail


class EnrollmentError(WatchlistError):
    """Enrollment input (photo folder, entries CSV) is unusable as a whole."""


class CaptureError(EdgeError):
    """A video source cannot be opened or read, or was lost for good."""


class SourceError(CaptureError):
    """A video source names nothing usable (no such file, folder, camera or URL scheme)."""


class StreamError(CaptureError):
    """A network stream cannot be opened, or failed while read; ``cause`` names why ("refused",
    "not found", "unauthorized", "timeout", "stalled", ...), so the capture can decide whether
    and how soon to retry."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class SyncError(EdgeError):
    """Watchlist sync over MQTT: a bad announcement or chunk, or a transfer that cannot finish."""


class DispatchError(EdgeError):
    """Dispatch (the centre's service): its database, an account, or a request it must refuse."""


class NotAllowedError(DispatchError):
    """The signed-in person's role may not do this (the web app answers 403)."""


class NotFoundError(DispatchError):
    """No such alert, device, entry or user (the web app answers 404)."""
