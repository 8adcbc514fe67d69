"""Files attached to test cases: stored through :mod:`webapp.storage`, described by :class:`Attachment` rows.

- Each upload keeps its name, size, SHA-256 and a content type sniffed from its
  first bytes (puremagic), never the one the client claims.
- Every file's size is checked before any is stored, so an upload with one
  file over ``MAX_ATTACHMENT_BYTES`` stores nothing.
- Objects are written before their rows; if the transaction then rolls back,
  they are deleted after the rollback. Objects of deleted cases, suites,
  builds and instances are deleted only after the transaction has committed
  (a session ``after_commit`` hook), never before; what a crash leaves behind
  ``flask storage gc`` finds.
- Downloads are ``Content-Disposition: attachment`` with a neutral type,
  except images of :data:`INLINE_TYPES`; nothing uploaded is ever served as
  HTML or script.
"""

import hashlib
import posixpath
import re
import uuid
from datetime import timedelta

import puremagic
from flask import current_app
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp import storage
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import utcnow
from webapp.models_messages import Attachment

PREFIX = "attachments/"
SNIFF_BYTES = 8192
NAME_LIMIT = 255
# shown inline: raster images only (SVG can carry script, so it is downloaded like the rest)
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DOWNLOAD_TYPE = "application/octet-stream"
# the Jenkins attachments plugin's convention, in a case's system-out or system-err
REFERENCE = re.compile(r"\[\[ATTACHMENT\|([^\]\r\n]{1,1024})\]\]")
ORPHAN_GRACE = timedelta(hours=1)
PENDING_DELETES = "greenbar_storage_deletes"
UNCOMMITTED = "greenbar_storage_uncommitted"


class TooLarge(Exception):
    """A file above the attachment size limit; nothing of the upload was stored."""

    def __init__(self, name, limit):
        super().__init__(f"{name}: attachments may be at most {limit // (1024 * 1024)} MB")


def sniff(head):
    """The content type of a file from its first bytes: puremagic's answer, else text or binary."""
    try:
        found = puremagic.from_string(head, mime=True)
    except (puremagic.PureError, ValueError):
        found = ""
    if found:
        return found[:127]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # a multi-byte character cut at the end of the sniffed bytes is still text
        if error.start < len(head) - 3:
            return DOWNLOAD_TYPE
    return "text/plain"


def size_of(stream):
    """The byte size of a seekable stream, leaving it at its start."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def clean_name(name):
    """A file name to keep and show: the last path part, without control characters, cut to fit."""
    name = posixpath.basename((name or "").replace("\\", "/"))
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name or "file")[-NAME_LIMIT:]


def digest_and_head(stream):
    """The SHA-256 of a stream and its first bytes, leaving it at its start."""
    digest = hashlib.sha256()
    head = stream.read(SNIFF_BYTES)
    digest.update(head)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest(), head


def check_sizes(files, limit):
    """Refuse the whole upload when any file is too large.

    :param files: ``(name, seekable binary stream)`` pairs.
    :raise TooLarge: naming the first file over ``limit`` bytes.
    """
    for name, stream in files:
        if size_of(stream) > limit:
            raise TooLarge(clean_name(name), limit)


def store(case, files):
    """Store files for ``case`` and add their rows (the caller commits); return the new attachments.

    :param files: ``(name, seekable binary stream)`` pairs, sizes already checked.
    """
    stored = []
    uncommitted = db.session.info.setdefault(UNCOMMITTED, [])
    for name, stream in files:
        sha256, head = digest_and_head(stream)
        size = size_of(stream)
        key = f"{PREFIX}{case.instance_id}/{case.build_id}/{uuid.uuid4().hex}"
        storage.get().put(key, stream)
        stream.seek(0)
        uncommitted.append(key)
        attachment = Attachment(
            case_id=case.id,
            build_id=case.build_id,
            instance_id=case.instance_id,
            name=clean_name(name),
            size=size,
            sha256=sha256,
            content_type=sniff(head),
            storage_key=key,
        )
        db.session.add(attachment)
        stored.append(attachment)
    db.session.flush()
    return stored


def upload(case, files):
    """Check every file's size, then store them all (the caller commits)."""
    check_sizes(files, current_app.config["MAX_ATTACHMENT_BYTES"])
    return store(case, files)


def of_case(case_id):
    """A case's attachments, oldest first."""
    return db.session.scalars(
        select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
    ).all()


def find(case_id, attachment_id):
    """One attachment of a case, or None."""
    attachment = db.session.get(Attachment, attachment_id) if attachment_id < 2**31 else None
    return attachment if attachment is not None and attachment.case_id == case_id else None


def inline(attachment):
    """Whether a download may be shown in the browser: safe raster images only."""
    return attachment.content_type in INLINE_TYPES


def served_type(attachment):
    """The Content-Type a download is sent with: the image's own, or a neutral binary type."""
    return attachment.content_type if inline(attachment) else DOWNLOAD_TYPE


def download_url(attachment):
    """A presigned URL to redirect a download to, or None when the app streams it itself."""
    return storage.get().download_url(
        attachment.storage_key, attachment.name, served_type(attachment), inline(attachment)
    )


def open_object(attachment):
    """A binary stream of an attachment's bytes."""
    return storage.get().open(attachment.storage_key)


def references(text):
    """The paths a case's output refers to as ``[[ATTACHMENT|path]]``."""
    return [match.strip() for match in REFERENCE.findall(text or "")]


def attach_referenced(build, files):
    """Store the import's attachment files for the cases of ``build`` that refer to them.

    A reference matches a file by its full name or by its last path part, as
    the Jenkins plugin's relative paths would. The caller commits.

    :param files: ``{name: seekable binary stream}`` of the upload's attachment parts.
    :return: how many attachments were stored.
    """
    if not files:
        return 0
    check_sizes(files.items(), current_app.config["MAX_ATTACHMENT_BYTES"])
    by_base = {posixpath.basename(name.replace("\\", "/")): name for name in files}
    rows = db.session.execute(
        select(TestCase.id, TestCase.system_out, TestCase.system_err).where(
            TestCase.build_id == build.id,
            TestCase.system_out.contains("[[ATTACHMENT|") | TestCase.system_err.contains("[[ATTACHMENT|"),
        )
    ).all()
    count = 0
    for case_id, out, err in rows:
        case = db.session.get(TestCase, case_id)
        for path in dict.fromkeys(references(out) + references(err)):
            name = path if path in files else by_base.get(posixpath.basename(path.replace("\\", "/")))
            if name is not None:
                count += len(store(case, [(name, files[name])]))
    return count


def keys_under(model, item_id):
    """The storage keys of the attachments below a case, suite, build or instance."""
    column = {
        TestCase: Attachment.case_id,
        TestBuild: Attachment.build_id,
        TestInstance: Attachment.instance_id,
    }.get(model)
    statement = select(Attachment.storage_key)
    if model is TestSuite:
        statement = statement.join(TestCase, TestCase.id == Attachment.case_id).where(
            TestCase.suite_id == item_id
        )
    else:
        statement = statement.where(column == item_id)
    return list(db.session.scalars(statement))


def delete_after_commit(session, keys):
    """Delete these objects once ``session`` commits (for bulk deletes that bypass the ORM)."""
    session.info.setdefault(PENDING_DELETES, []).extend(keys)


@event.listens_for(Session, "before_flush")
def collect_deleted(session, flush_context, instances):
    """Note the objects of cases, suites, builds and instances deleted in this flush."""
    for item in session.deleted:
        if isinstance(item, (TestCase, TestSuite, TestBuild, TestInstance)):
            with session.no_autoflush:
                delete_after_commit(session, keys_under(type(item), item.id))


@event.listens_for(Session, "after_commit")
def delete_committed(session):
    """Delete the objects of committed deletes; keep the committed uploads."""
    session.info.pop(UNCOMMITTED, None)
    remove_objects(session.info.pop(PENDING_DELETES, None))


@event.listens_for(Session, "after_rollback")
def delete_rolled_back(session):
    """Forget the deletes of a rolled-back transaction; delete the objects it had uploaded."""
    session.info.pop(PENDING_DELETES, None)
    remove_objects(session.info.pop(UNCOMMITTED, None))


def remove_objects(keys):
    """Delete objects now; a failure is logged, and ``flask storage gc`` removes them later."""
    if not keys:
        return
    try:
        storage.get().delete_many(keys)
    except Exception:
        current_app.logger.exception("could not delete %d stored objects; run flask storage gc", len(keys))


def orphans(grace=ORPHAN_GRACE):
    """Stored attachment objects that no attachment row refers to.

    Objects younger than ``grace`` are left alone: an upload stores its object
    just before its row commits.
    """
    known = set(db.session.scalars(select(Attachment.storage_key)))
    cutoff = utcnow() - grace
    return [
        key for key, modified in storage.get().list_objects(PREFIX) if key not in known and modified < cutoff
    ]
