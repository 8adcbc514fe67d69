"""Failure signatures: what two failures have in common once their incidental details are masked.

A failure's signature is its message and the first lines of its details with
the parts that change from run to run replaced by placeholders (numbers, hex
ids and addresses, UUIDs, timestamps, temporary paths, ports, line numbers),
while the exception type and the words stay. Failures with equal signatures
are one cause. The hash is short and indexed, so grouping never reads the text.

Pure functions only: every write path calls :func:`signature_for`.
"""

import functools
import hashlib
import re

FAILING = ("FAILED", "ERROR")
# lines of the details that take part: the head of a traceback names the cause
DETAIL_LINES = 3
# the stored normalised text is cut here; the hash is taken of the whole of it
TEXT_LIMIT = 1000
HASH_CHARS = 16

# order matters: the wider patterns run first so that their digits are not masked piecemeal
MASKS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(\.\d+)?\b"), "<time>"),
    (
        re.compile(
            r"(?<![\w/])(/tmp|/var/tmp|/private/var/folders|[A-Za-z]:\\[^\s]*\\Temp)[^\s'\"(),:]*", re.I
        ),
        "<tmp>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"(?<=[\w\]]):\d{2,5}\b"), ":<port>"),
    (re.compile(r"\bline \d+\b", re.I), "line <n>"),
    # digits glued to letters are part of a word or identifier (``Py3Error``, ``test_42``) and stay
    (re.compile(r"(?<![A-Za-z_\d])\d+(\.\d+)?"), "<n>"),
)
SPACES = re.compile(r"\s+")
# The same messages and traceback heads come back build after build (that is what a signature
# finds), so each process remembers the latest few thousand short ones: on the import benchmark's
# report, 20,000 texts of 5,000 failures are 540 distinct ones, and signing them costs 30 x less.
REMEMBERED_TEXTS = 8192
REMEMBERED_CHARS = 500


def normalise(text):
    """Mask the run-specific parts of ``text`` and fold its whitespace."""
    if len(text) <= REMEMBERED_CHARS:
        return remembered_normalise(text)
    return masked(text)


def masked(text):
    """:func:`normalise`'s work, done every time."""
    for pattern, placeholder in MASKS:
        text = pattern.sub(placeholder, text)
    return SPACES.sub(" ", text).strip()


remembered_normalise = functools.lru_cache(maxsize=REMEMBERED_TEXTS)(masked)


def signature_text(message, details):
    """The normalised message and first lines of the details, one line each."""
    parts = []
    if message and message.strip():
        parts.append(normalise(message))
    if details:
        lines = [line for line in details.splitlines() if line.strip()][:DETAIL_LINES]
        head = [normalise(line) for line in lines]
        # a message repeated as the details' first line adds nothing
        parts.extend(line for line in head if line not in parts)
    return "\n".join(parts)


def signature_for(message, details):
    """Return ``(hash, text)`` of a failure's signature.

    A failure with neither message nor details still has a signature: the
    empty one, which groups every silent failure together.
    """
    text = signature_text(message, details)
    digest = hashlib.blake2b(text.encode(), digest_size=HASH_CHARS // 2).hexdigest()
    return digest, text[:TEXT_LIMIT]


def signed(fields, current=None):
    """``fields`` of a case with its ``signature`` and ``signature_text`` set or cleared.

    A case that failed or errored gets the signature of its message and
    details; any other status clears it. What ``fields`` leaves out is read
    from ``current``, the stored case, when there is one.
    """

    def value(name):
        return fields[name] if name in fields else getattr(current, name, None)

    if value("result_status") in FAILING:
        fields["signature"], fields["signature_text"] = signature_for(value("message"), value("details"))
    else:
        fields["signature"] = fields["signature_text"] = None
    return fields
