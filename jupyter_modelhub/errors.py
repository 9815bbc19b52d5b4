"""The one exception hierarchy of jupyter-modelhub.

Every error a user can cause or meet is a :class:`ModelHubError` with a stable ``code`` and a
message that names the problem and, where there is one, the fix. Adapters map these once:
REST to an HTTP status (``http_status``), magics to a one-line message, the CLI to exit code 2.
Anything that is not a ``ModelHubError`` is a bug and may surface as a traceback.
"""

from __future__ import annotations


class ModelHubError(Exception):
    """Base of every expected error; ``str(error)`` is the message shown to the user."""

    code = "MODELHUB_ERROR"
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")

    def to_dict(self) -> dict[str, str]:
        """The JSON body a REST adapter sends for this error."""
        return {"error": self.code, "message": str(self)}


class InvalidArgument(ModelHubError):
    """A value given by the user is malformed: a bad name, reference, version or option."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class NotFound(ModelHubError):
    """The thing referred to does not exist (a hub, model, version or stage)."""

    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class HubNotFound(NotFound):
    """No hub exists at the path that was opened."""

    code = "HUB_DOES_NOT_EXIST"


class AlreadyExists(ModelHubError):
    """Creating something that already exists (an explicit version, a hub)."""

    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class Conflict(ModelHubError):
    """The hub's state forbids the operation right now (held lock, leftovers of a crash)."""

    code = "CONFLICT"
    http_status = 409


class IntegrityError(ModelHubError):
    """Stored bytes do not match their recorded hash; nothing was loaded."""

    code = "INTEGRITY_ERROR"
    http_status = 409


class BackendError(ModelHubError):
    """An external system (git, DVC, a remote, a deployment target) failed."""

    code = "BACKEND_ERROR"
    http_status = 502
