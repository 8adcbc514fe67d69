"""Database models: users and tokens, and the test instance → build → suite → case tree.

Suites and builds carry aggregate counters so that no list or statistics page
ever counts case rows; :mod:`webapp.results` is the only code that changes
cases and keeps those counters exact.
"""

import hashlib
import hmac
import json
from datetime import datetime
from datetime import timezone

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import DateTime
from sqlalchemy import Double
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from webapp.domain import CASE_NAME_LIMIT
from webapp.domain import NAME_LIMIT
from webapp.domain import RAN
from webapp.domain import STATUS_COUNTER
from webapp.domain import STATUSES  # noqa: F401 (other branches still import it from here; take it from domain)
from webapp.domain import URL_LIMIT
from webapp.domain import USERNAME_LIMIT
from webapp.domain import WORST_FIRST
from webapp.extensions import db

ROLES = ("viewer", "maintainer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

# long free text: MySQL's TEXT stops at 64 KB, too small for tracebacks and logs
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")
# build numbers a client may give; the 32-bit column keeps headroom above them, so
# the number after the highest one always fits (an overflow is a 409, never a 500)
MAX_BUILD_NUMBER = 1_000_000_000
# the part of a typed login name a lockout keeps (names longer than any account's)
LOCKOUT_NAME_LENGTH = 191
TEST_KEY_LENGTH = 32
HEX_DIGITS = frozenset("0123456789abcdef")
# a hex digest: ASCII with binary comparison makes its indexes 4x smaller and grouping cheap
TestKey = String(32).with_variant(mysql.VARCHAR(32, charset="ascii", collation="ascii_bin"), "mysql")
# an id that may pass 2**31 (a 100,000-case import every build overflows INT after about 21,000
# builds): BIGINT, except on SQLite, whose INTEGER is 64-bit already and must stay INTEGER to be
# the rowid that numbers new rows
BigId = BigInteger().with_variant(Integer(), "sqlite")
# a failure signature's short hash (webapp.signatures), ASCII for the same reasons
SignatureHash = String(16).with_variant(mysql.VARCHAR(16, charset="ascii", collation="ascii_bin"), "mysql")
# seconds: MySQL's plain FLOAT is single precision (7 digits), which drifts in summed
# counters and cuts long durations; SQLite's REAL is already double
Seconds = Float().with_variant(Double(), "mysql")


def exact_name(length):
    """A name that is an identity (of a suite or case): MySQL must not fold case or accents in it."""
    exact = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
    return String(length).with_variant(exact, "mysql")


def utcnow():
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and read back as aware UTC.

    MySQL gets ``DATETIME(6)`` so that millisecond test timings survive.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        """Use microsecond precision on MySQL."""
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        """Store aware datetimes as naive UTC."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        """Mark stored values as UTC."""
        if value is not None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Properties(TypeDecorator):
    """A suite's or case's ``<properties>``: ``(name, value)`` pairs, in order, stored as JSON text.

    Text rather than a JSON column: MariaDB's JSON is LONGTEXT under another name, and
    nothing queries inside them. Names may repeat (several ``tag`` properties), so a list, not a map.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        """MEDIUMTEXT on MySQL: 256 properties of up to 1,279 characters outgrow TEXT's 64 KB."""
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value, dialect):
        """Store the pairs as a JSON list of two-item lists; none at all as NULL."""
        return json.dumps([list(pair) for pair in value], ensure_ascii=False) if value else None

    def process_result_value(self, value, dialect):
        """Read the pairs back as tuples."""
        return [tuple(pair) for pair in json.loads(value)] if value else None


def test_key(suite_name, case_name):
    """Return the stable identity of a test within an instance: its suite and case names."""
    return hashlib.blake2b(f"{suite_name}\x1f{case_name}".encode(), digest_size=16).hexdigest()


def is_test_key(text):
    """Whether ``text`` has a test key's form (32 lowercase hex digits).

    The key column is ASCII on MySQL: comparing it with other text fails there
    (error 1267), so a lookup checks the form first and treats the rest as not found.
    """
    return len(text) == TEST_KEY_LENGTH and all(char in HEX_DIGITS for char in text)


test_key.__test__ = False  # a helper, not a test, for pytest modules that import it


class User(UserMixin, db.Model):
    """A person or CI account; ``role`` is one of :data:`ROLES`."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LIMIT), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tokens: Mapped[list["ApiToken"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_active(self):
        """Deactivated users can neither log in nor call the API."""
        return self.active

    def get_id(self):
        """The id kept in sessions and remember-me cookies: the user id and a password fingerprint.

        The fingerprint changes with the password, so changing (or resetting)
        it ends every other session and remember-me cookie of this user.
        """
        key = current_app.config["SECRET_KEY"].encode()
        fingerprint = hmac.new(key, self.password_hash.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{self.id}-{fingerprint}"

    def set_password(self, password):
        """Store a slow, salted hash of ``password`` (scrypt unless configured otherwise)."""
        method = current_app.config["PASSWORD_HASH_METHOD"]
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password):
        """Return whether ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def has_role(self, role):
        """Return whether this user's role includes the rights of ``role``."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    def __str__(self):
        return self.username


class ApiToken(db.Model):
    """An API token; only the SHA-256 digest of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    def __str__(self):
        return f"{self.name or 'token'} ({self.hint}…)"


class CountersMixin:
    """Aggregate counters of the cases below a suite or build (:data:`webapp.domain.COUNTERS`).

    ``cases_total`` counts every case, finished or not; the per-status counters
    count finished cases; ``cases_duration`` sums their durations in seconds.
    """

    cases_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    passed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errored: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flaky: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cases_duration: Mapped[float] = mapped_column(Seconds, default=0.0, server_default="0")

    def count(self, status):
        """The finished cases of one status."""
        return getattr(self, STATUS_COUNTER[status])

    @property
    def pass_rate(self):
        """Passed share of the cases that ran (skips excluded), or None if none ran."""
        ran = sum(self.count(status) for status in RAN)
        return round(self.passed / ran, 4) if ran else None

    @property
    def status(self):
        """The worst status of the finished cases (ERROR, FAILED, SUCCESS, SKIPPED), or None."""
        return next((status for status in WORST_FIRST if self.count(status)), None)


# pass-rate thresholds an instance starts with: green at 100 %, amber from 90 %, red below
PASS_GREEN_DEFAULT = 1.0
PASS_AMBER_DEFAULT = 0.9


class TestInstance(db.Model):
    """A product under test.

    ``pass_green`` and ``pass_amber`` are the pass rates (0..1) from which a
    build of this product shows green or amber; below amber it shows red.
    """

    __tablename__ = "test_instances"
    __test__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LIMIT), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pass_green: Mapped[float] = mapped_column(
        Float, default=PASS_GREEN_DEFAULT, server_default=str(PASS_GREEN_DEFAULT)
    )
    pass_amber: Mapped[float] = mapped_column(
        Float, default=PASS_AMBER_DEFAULT, server_default=str(PASS_AMBER_DEFAULT)
    )
    # the retention policy (webapp.retention): keep case rows of builds from the last days
    # or of the newest builds; NULL in both keeps everything
    keep_days: Mapped[int | None] = mapped_column(Integer)
    keep_builds: Mapped[int | None] = mapped_column(Integer)

    builds: Mapped[list["TestBuild"]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", passive_deletes=True
    )

    def __str__(self):
        return self.name


class TestBuild(CountersMixin, db.Model):
    """One run of an instance's tests, numbered within the instance."""

    __tablename__ = "test_builds"
    __test__ = False
    __table_args__ = (
        UniqueConstraint("instance_id", "number"),
        Index("ix_test_builds_instance_id_branch", "instance_id", "branch"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(NAME_LIMIT))
    branch: Mapped[str | None] = mapped_column(String(NAME_LIMIT))
    revision: Mapped[str | None] = mapped_column(String(NAME_LIMIT))
    ci_url: Mapped[str | None] = mapped_column(String(URL_LIMIT))
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suites_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # a pinned build is never pruned; ``pruned`` is when retention deleted its case rows
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    pruned: Mapped[datetime | None] = mapped_column(UTCDateTime)

    instance: Mapped[TestInstance] = relationship(back_populates="builds")
    suites: Mapped[list["TestSuite"]] = relationship(
        back_populates="build", cascade="all, delete-orphan", passive_deletes=True
    )

    def __str__(self):
        return f"#{self.number}"


class TestSuite(CountersMixin, db.Model):
    """A named group of cases within a build."""

    __tablename__ = "test_suites"
    __test__ = False
    __table_args__ = (UniqueConstraint("build_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("test_builds.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(exact_name(NAME_LIMIT))
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    system_out: Mapped[str | None] = mapped_column(LongText)
    system_err: Mapped[str | None] = mapped_column(LongText)
    properties: Mapped[list | None] = mapped_column(Properties)

    build: Mapped[TestBuild] = relationship(back_populates="suites")
    cases: Mapped[list["TestCase"]] = relationship(
        back_populates="suite", cascade="all, delete-orphan", passive_deletes=True
    )

    def __str__(self):
        return self.name


class TestCase(db.Model):
    """One test's result in one build.

    ``build_id``, ``instance_id`` and ``test_key`` repeat what the suite knows,
    so that a build's failures and a test's history are single index lookups.
    """

    __tablename__ = "test_cases"
    __test__ = False
    __table_args__ = (
        UniqueConstraint("suite_id", "name"),
        Index("ix_test_cases_suite_id_result_status", "suite_id", "result_status"),
        # covers the statistics' scans of a window of builds, so they never read the rows themselves
        Index(
            "ix_test_cases_build_status_cover",
            "build_id",
            "result_status",
            "test_key",
            "duration",
            "is_flaky",
        ),
        Index("ix_test_cases_instance_id_test_key", "instance_id", "test_key", "build_id"),
        # failure groups of a build or a window of builds, counted from the index alone
        Index("ix_test_cases_build_signature", "build_id", "signature", "test_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    suite_id: Mapped[int] = mapped_column(BigId, ForeignKey("test_suites.id", ondelete="CASCADE"))
    build_id: Mapped[int] = mapped_column(ForeignKey("test_builds.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    test_key: Mapped[str] = mapped_column(TestKey)
    name: Mapped[str] = mapped_column(exact_name(CASE_NAME_LIMIT))
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result_status: Mapped[str | None] = mapped_column(String(8))
    duration: Mapped[float | None] = mapped_column(Seconds)
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(LongText)
    system_out: Mapped[str | None] = mapped_column(LongText)
    system_err: Mapped[str | None] = mapped_column(LongText)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    is_flaky: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    properties: Mapped[list | None] = mapped_column(Properties)
    # a FAILED or ERROR case's failure signature (webapp.signatures); NULL otherwise
    signature: Mapped[str | None] = mapped_column(SignatureHash)
    signature_text: Mapped[str | None] = mapped_column(Text)

    suite: Mapped[TestSuite] = relationship(back_populates="cases")

    def __str__(self):
        return self.name


class IdempotencyRecord(db.Model):
    """The first reply to a request sent with an ``Idempotency-Key`` header.

    Stored in the same transaction as the write it answers, so a retried
    request either finds this row and gets the same reply, or nothing was stored.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_path: Mapped[str] = mapped_column(String(1024))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(LongText)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateCounter(db.Model):
    """One rate-limit counter, for app servers that share a MySQL database but no Redis.

    ``key`` is a digest of the limits library's key (bounded and ASCII whatever
    username was typed); ``expires`` is in epoch seconds, when the window ends.
    """

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires: Mapped[float] = mapped_column(Double)


class LoginLockout(db.Model):
    """A username at an address (or, with an empty username, a whole address) refused logins for now.

    Written when failed password attempts use up a counter, so admins can see
    lockouts and lift them whatever store keeps the counters.
    """

    __tablename__ = "login_lockouts"
    __table_args__ = (UniqueConstraint("username", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(LOCKOUT_NAME_LENGTH))
    address: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
