"""Errors of the model server, in the one ``ModelHubError`` hierarchy.

A request the server cannot serve is always one of these, so an adapter answers it with its
``http_status`` and a message that names the offending field; anything else is a bug (a 500).
"""

from __future__ import annotations

from ..errors import InvalidArgument, ModelHubError, NotFound


class InvalidRequest(InvalidArgument):
    """A payload that does not fit the protocol or the model's signature.

    ``field`` is where the problem is, in the request's own terms (``inputs[0].shape``,
    ``dataframe_split.columns``, ``feature 'age'``); the message always starts with it.
    """

    code = "INVALID_REQUEST"

    def __init__(self, field: str, problem: str, *, hint: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem, hint=hint)


class PayloadTooLarge(InvalidArgument):
    """The request body is larger than the server accepts."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidArgument):
    """A body in a format the endpoint does not read."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class ModelNotServed(NotFound):
    """The URL names a model or version that this server does not serve."""

    code = "MODEL_NOT_SERVED"


class ModelInputError(InvalidArgument):
    """The input fitted the signature but the model refused it (NaN, an unseen category...)."""

    code = "MODEL_REJECTED_INPUT"


class NotReady(ModelHubError):
    """The server is starting or draining and takes no predictions now."""

    code = "NOT_READY"
    http_status = 503


class ModelLoadError(ModelHubError):
    """The version cannot be served: unsupported flavor, unknown inputs, failing self-test."""

    code = "MODEL_LOAD_ERROR"
    http_status = 500
