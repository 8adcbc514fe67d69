"""Floor for the live API: the seed's create/start/finish calls answered by a bare WSGI app.

Copied from the floor the project's reviewers measured Greenbar against (issue 12), with its
behaviour unchanged; api_bench runs it next to Greenbar, interleaved, and prints the ratio.

No framework, no ORM: one PyMySQL connection per thread, a token checked by one indexed digest
lookup, counters kept exact in the same transaction (multi-table UPDATE on finish), one COMMIT per
request. It answers only the paths a live-API benchmark uses (create instance, build, suite and
case; start and finish a case; read a build), with the same JSON field names, so one client can
measure both apps.

api_bench calls :func:`setup` for a scratch database named by ``DATABASE`` and serves ``app``
with gunicorn.conf.py from this folder (``live_floor:app``).
"""

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import threading
from datetime import datetime
from datetime import timezone

import pymysql

DB = {
    "host": "127.0.0.1",
    "user": "root",
    "database": os.environ.get("DATABASE", "gb_floor"),
    "charset": "utf8mb4",
    "autocommit": False,
}
local = threading.local()

SCHEMA = """
CREATE TABLE tokens (digest BINARY(32) PRIMARY KEY, user_id INT NOT NULL);
CREATE TABLE instances (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) UNIQUE, description TEXT);
CREATE TABLE builds (id INT AUTO_INCREMENT PRIMARY KEY, instance_id INT NOT NULL, number INT,
  started DATETIME(6), finished DATETIME(6), cases_total INT NOT NULL DEFAULT 0,
  passed INT NOT NULL DEFAULT 0, failed INT NOT NULL DEFAULT 0, errored INT NOT NULL DEFAULT 0,
  skipped INT NOT NULL DEFAULT 0,
  FOREIGN KEY (instance_id) REFERENCES instances(id) ON DELETE CASCADE);
CREATE TABLE suites (id INT AUTO_INCREMENT PRIMARY KEY, build_id INT NOT NULL, name VARCHAR(255),
  started DATETIME(6), finished DATETIME(6), cases_total INT NOT NULL DEFAULT 0,
  passed INT NOT NULL DEFAULT 0, failed INT NOT NULL DEFAULT 0, errored INT NOT NULL DEFAULT 0,
  skipped INT NOT NULL DEFAULT 0,
  UNIQUE (build_id, name), FOREIGN KEY (build_id) REFERENCES builds(id) ON DELETE CASCADE);
CREATE TABLE cases (id INT AUTO_INCREMENT PRIMARY KEY, suite_id INT NOT NULL, build_id INT NOT NULL,
  name VARCHAR(512), started DATETIME(6), finished DATETIME(6), result_status VARCHAR(8),
  UNIQUE (suite_id, name), FOREIGN KEY (suite_id) REFERENCES suites(id) ON DELETE CASCADE,
  FOREIGN KEY (build_id) REFERENCES builds(id) ON DELETE CASCADE);
"""
COUNTER = {"SUCCESS": "passed", "FAILED": "failed", "ERROR": "errored", "SKIPPED": "skipped"}
ROUTES = [
    (re.compile(r"^/api/test-instance/$"), "instance"),
    (re.compile(r"^/api/test-instance/(\d+)/test-build/$"), "build"),
    (re.compile(r"^/api/test-instance/(\d+)/test-build/(\d+)/$"), "build_get"),
    (re.compile(r"^/api/test-instance/(\d+)/test-build/(\d+)/test-suite/$"), "suite"),
    (re.compile(r"^/api/test-instance/(\d+)/test-build/(\d+)/test-suite/(\d+)/test-case/$"), "case"),
    (
        re.compile(
            r"^/api/test-instance/(\d+)/test-build/(\d+)/test-suite/(\d+)/test-case/(\d+)/(start|finish)/$"
        ),
        "life",
    ),
]


def conn():
    """This thread's connection."""
    connection = getattr(local, "c", None)
    if connection is None:
        connection = local.c = pymysql.connect(**DB)
    return connection


def now():
    """The time as naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def reply(start, status, body):
    """Send a JSON answer."""
    data = json.dumps(body).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def token_of(environ):
    """The Basic password, or None."""
    try:
        credentials = environ.get("HTTP_AUTHORIZATION", "").split(" ", 1)[1]
        return base64.b64decode(credentials).decode().split(":", 1)[1]
    except (IndexError, binascii.Error, UnicodeDecodeError):
        return None


def route(path):
    """The kind of call a path is and its match, or (None, None)."""
    for rx, kind in ROUTES:
        m = rx.match(path)
        if m:
            return kind, m
    return None, None


def app(environ, start):  # noqa: C901, PLR0912 (one flat dispatcher, as measured)
    """Answer one API call."""
    c = conn()
    cur = c.cursor()
    secret = token_of(environ)
    if secret is None:
        return reply(start, "401 Unauthorized", {"error": "auth"})
    cur.execute("SELECT user_id FROM tokens WHERE digest=%s", (hashlib.sha256(secret.encode()).digest(),))
    if not cur.fetchone():
        c.rollback()
        return reply(start, "401 Unauthorized", {"error": "auth"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length)) if length else {}
    kind, m = route(environ["PATH_INFO"])
    if m is None:
        c.rollback()
        return reply(start, "404 Not Found", {"error": "path"})
    ids = [int(x) for x in m.groups() if x and x.isdigit()]
    if kind == "instance":
        cur.execute(
            "INSERT INTO instances (name, description) VALUES (%s, %s)",
            (body["name"], body.get("description")),
        )
        out, code = {"id": cur.lastrowid, "name": body["name"]}, "201 Created"
    elif kind == "build":
        cur.execute("INSERT INTO builds (instance_id, number) VALUES (%s, 1)", (ids[0],))
        out, code = {"id": cur.lastrowid}, "201 Created"
    elif kind == "build_get":
        cur.execute(
            "SELECT id, cases_total, passed, failed, errored, skipped FROM builds "
            "WHERE id=%s AND instance_id=%s",
            (ids[1], ids[0]),
        )
        r = cur.fetchone()
        out, code = (
            dict(zip(("id", "cases_total", "passed", "failed", "errored", "skipped"), r, strict=True)),
            "200 OK",
        )
    elif kind == "suite":
        cur.execute("INSERT INTO suites (build_id, name) VALUES (%s, %s)", (ids[1], body["name"]))
        out, code = {"id": cur.lastrowid, "name": body["name"]}, "201 Created"
    elif kind == "case":
        cur.execute(
            "UPDATE suites s JOIN builds b ON b.id = s.build_id SET s.cases_total = s.cases_total + 1, "
            "b.cases_total = b.cases_total + 1 WHERE s.id=%s AND b.id=%s",
            (ids[2], ids[1]),
        )
        cur.execute(
            "INSERT INTO cases (suite_id, build_id, name) VALUES (%s, %s, %s)", (ids[2], ids[1], body["name"])
        )
        out, code = (
            {"id": cur.lastrowid, "name": body["name"], "started": None, "finished": None},
            "201 Created",
        )
    else:
        cid, action = ids[3], m.group(5)
        t = now()
        if action == "start":
            cur.execute(
                "UPDATE cases SET started=COALESCE(started, %s) WHERE id=%s AND suite_id=%s", (t, cid, ids[2])
            )
            out = {"id": cid, "started": t.isoformat() + "Z"}
        else:
            col = COUNTER[body["result_status"]]
            cur.execute(
                f"UPDATE cases c JOIN suites s ON s.id = c.suite_id JOIN builds b ON b.id = s.build_id "  # noqa: S608 (a fixed column name)
                f"SET c.finished=%s, c.result_status=%s, s.{col} = s.{col} + 1, b.{col} = b.{col} + 1 "
                f"WHERE c.id=%s AND c.suite_id=%s AND c.finished IS NULL",
                (t, body["result_status"], cid, ids[2]),
            )
            out = {"id": cid, "finished": t.isoformat() + "Z", "result_status": body["result_status"]}
        code = "200 OK"
    c.commit()
    return reply(start, code, out)


def setup():
    """Make the floor's scratch database afresh and return a token for it."""
    c = pymysql.connect(**{**DB, "database": None})
    cur = c.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB['database']}")
    cur.execute(f"CREATE DATABASE {DB['database']} CHARACTER SET utf8mb4")
    cur.execute(f"USE {DB['database']}")
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            cur.execute(stmt)
    token = "fl_" + secrets.token_urlsafe(24)
    cur.execute("INSERT INTO tokens VALUES (%s, 1)", (hashlib.sha256(token.encode()).digest(),))
    c.commit()
    c.close()
    return token


def drop():
    """Drop the floor's scratch database."""
    c = pymysql.connect(**{**DB, "database": None})
    c.cursor().execute(f"DROP DATABASE IF EXISTS {DB['database']}")
    c.close()
