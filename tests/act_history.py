"""A hand-built history for failure groups, triage, quarantine, gate, split and badges.

The history (instance "product", suite "s"):

==========  ============================  ==============================  =========
test        build 1 (main, finished)      build 2 (main, finished)        durations
==========  ============================  ==============================  =========
t1          FAILED expected 3 got 4 (A)   FAILED expected 10 got 11 (A)   1, 1
t2          FAILED expected 7 got 9 (A)   FAILED expected 5 got 6 (A)     1, 1
t3          ERROR localhost:5432 (B)      ERROR localhost:6543 (B)        1, 1
t4          SUCCESS                       FAILED KeyError: 'user' (C)     1, 3
t5          SUCCESS                       SUCCESS                         2, 4
==========  ============================  ==============================  =========

So build 2 has groups A (2), B (1), C (1); over both builds A has 4 failures
in 2 builds and 2 tests, B 2 in 2 builds and 1 test, C 1 in build 2 only.
Build 2's only new failure against build 1 is t4; its pass rate is 1/5.
"""

import pytest

from tests.factories import make_instance
from webapp import results
from webapp.extensions import db
from webapp.signatures import signature_for

A = "AssertionError: expected {} got {}"
B = "ConnectionError: localhost:{} refused"
BUILDS = [
    {
        "t1": ("FAILED", A.format(3, 4), 1.0),
        "t2": ("FAILED", A.format(7, 9), 1.0),
        "t3": ("ERROR", B.format(5432), 1.0),
        "t4": ("SUCCESS", None, 1.0),
        "t5": ("SUCCESS", None, 2.0),
    },
    {
        "t1": ("FAILED", A.format(10, 11), 1.0),
        "t2": ("FAILED", A.format(5, 6), 1.0),
        "t3": ("ERROR", B.format(6543), 1.0),
        "t4": ("FAILED", "KeyError: 'user'", 3.0),
        "t5": ("SUCCESS", None, 4.0),
    },
]
SIG_A = signature_for(A.format(1, 2), None)[0]
SIG_B = signature_for(B.format(1234), None)[0]
SIG_C = signature_for("KeyError: 'user'", None)[0]


def build_history(app):
    """Store the two builds above; return the instance id and the build ids."""
    with app.app_context():
        instance = make_instance()
        ids = []
        for cases in BUILDS:
            build = results.create_build(instance, branch="main")
            suite = results.create_suite(build, "s")
            rows = [
                {"name": name, "result_status": status, "message": message, "duration": duration}
                for name, (status, message, duration) in cases.items()
            ]
            results.add_cases(suite, build, rows)
            results.finish(build)
            db.session.commit()
            ids.append(build.id)
        return instance.id, ids


@pytest.fixture
def history(app):
    """The two builds above: the instance id and the build ids."""
    return build_history(app)
