"""The errors services raise: plain exceptions at the bottom of the import graph.

Services (``results``, ``imports``, ``stats``, ``queries``) raise only these,
and know nothing of HTTP. The API and the pages turn each into an answer
(``webapp.errors``): its ``status`` is the HTTP status it becomes there.
"""


class GreenbarError(Exception):
    """A refused request; ``message`` says why in words a client can act on."""

    status = 400

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class ValidationError(GreenbarError):
    """Bad input; ``fields`` maps each bad field to what is wrong with it."""

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.fields = fields or {}


class FieldError(ValidationError):
    """A value that cannot be stored; ``field`` names the culprit."""

    def __init__(self, message, field):
        super().__init__(message, {field: message})
        self.field = field


class Conflict(GreenbarError):
    """A write that contradicts the stored state.

    :param existing: the stored object the request collided with, if any.
    """

    status = 409

    def __init__(self, message, existing=None):
        super().__init__(message)
        self.existing = existing


class ReportTooLarge(GreenbarError):
    """A report that decompresses to more than the configured limit."""

    status = 413


class UnsupportedEncoding(GreenbarError):
    """A report in a content encoding other than gzip or identity."""

    status = 415


class AttachmentTooLarge(GreenbarError):
    """An attachment above the size limit; nothing of its upload was stored."""

    status = 413
