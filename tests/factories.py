"""Small factory functions for tests, in the CTFd ``gen_*`` style."""

from webapp import results
from webapp.extensions import db
from webapp.models import User


def make_user(username="user", role="viewer", password="s3cret-pass", active=True):
    """Create and commit a user."""
    user = User(username=username, role=role, active=active)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def make_instance(name="product", description=""):
    """Create and commit a test instance."""
    instance = results.create_instance(name, description)
    db.session.commit()
    return instance


def make_build(instance, **fields):
    """Create and commit a build of ``instance``."""
    build = results.create_build(instance, **fields)
    db.session.commit()
    return build


def make_suite(build, name="suite", **fields):
    """Create and commit a suite in ``build``."""
    suite = results.create_suite(build, name, **fields)
    db.session.commit()
    return suite


def make_case(suite, name="case", result_status=None, **fields):
    """Create and commit a case, finished with ``result_status`` if given."""
    build = suite.build
    case = results.create_case(suite, build, name, result_status=result_status, **fields)
    db.session.commit()
    return case


def make_run(instance, statuses_by_suite, **build_fields):
    """Create a finished build whose suites hold cases with the given statuses.

    :param statuses_by_suite: ``{"suite name": {"case name": "SUCCESS", ...}, ...}``
    """
    build = results.create_build(instance, **build_fields)
    for suite_name, statuses in statuses_by_suite.items():
        suite = results.create_suite(build, suite_name)
        rows = [{"name": name, "result_status": status, "duration": 0.1} for name, status in statuses.items()]
        results.add_cases(suite, build, rows)
    db.session.commit()
    return build
