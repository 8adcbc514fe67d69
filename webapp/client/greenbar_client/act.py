"""Acting on results from CI: the quality gate, test shards and the quarantine list.

Shared by ``greenbar gate``, ``greenbar split`` and the pytest plugin's
``--greenbar-quarantine`` and ``--greenbar-shard I/N``. Shards are numbered
from 1 here (``1/4`` is the first of four), as CI matrices and GitLab's
``CI_NODE_INDEX`` count them; the API numbers them from 0.
"""

import re
import zlib

SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


class NotFound(Exception):
    """The instance or build named in the settings does not exist; ``str()`` says which."""


def parse_shard(text):
    """``(index, total)`` of ``I/N`` with 1 <= I <= N.

    :raise ValueError: for anything else, with a one-line reason.
    """
    match = SHARD.match(text or "")
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError(f"a shard is I/N with 1 <= I <= N, such as 1/4, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def instance_id(greenbar, name):
    """The id of the instance named ``name``; unlike an upload, this never creates it.

    :raise NotFound: when there is none.
    """
    found = greenbar.call("GET", "/api/test-instance/", params={"search": name, "limit": 100}).json()
    for instance in found["results"]:
        if instance["name"] == name:
            return instance["id"]
    raise NotFound(f"Greenbar has no test instance named {name!r} (GREENBAR_INSTANCE)")


def build_id(greenbar, instance, number=None):
    """The id of build ``number`` of an instance, or of its newest build when ``number`` is None.

    :raise NotFound: when there is no such build.
    """
    path = f"/api/test-instance/{instance}/test-build/"
    if number is not None:
        found = greenbar.call("GET", path, params={"search": str(number), "limit": 1000}).json()
        for build in found["results"]:
            if build["number"] == number:
                return build["id"]
        raise NotFound(f"the instance has no build number {number} (GREENBAR_BUILD_NUMBER)")
    total = greenbar.call("GET", path, params={"limit": 1}).json()["count"]
    if not total:
        raise NotFound("the instance has no builds yet")
    newest = greenbar.call("GET", path, params={"limit": 1, "offset": total - 1}).json()["results"]
    return newest[0]["id"]


def gate(greenbar, instance, build, base_branch=None, wait=60):
    """The gate's verdict on a build, waiting up to ``wait`` seconds for it to finish."""
    params = {"wait": str(wait)}
    if base_branch:
        params["base_branch"] = base_branch
    path = f"/api/test-instance/{instance}/test-build/{build}/gate/"
    return greenbar.call("GET", path, params=params).json()


def verdict_lines(verdict):
    """The gate's verdict as lines for a CI log: one per rule, then the outcome."""
    lines = [
        f"{'PASS' if rule['passed'] else 'FAIL'} {rule['rule']}: {rule['detail']}"
        for rule in verdict["rules"]
    ]
    build = verdict["build"]["number"]
    lines.append(f"gate {'passed' if verdict['passed'] else 'failed'} for build #{build}")
    return lines


def shard_tests(greenbar, instance, index, total, branch=None, before=None):
    """The node ids of shard ``index`` of ``total`` (from 1), and the node ids of every shard.

    :param before: the build number the shards run as: the split leaves that build out, so
        every shard splits by the same history however early its siblings finish.
    """
    params = {"shards": str(total)}
    if branch:
        params["branch"] = branch
    if before is not None:
        params["before"] = str(before)
    found = greenbar.call("GET", f"/api/test-instance/{instance}/split/", params=params).json()
    shards = [[test["node_id"] for test in shard["tests"]] for shard in found["results"]]
    return shards[index - 1], {node for shard in shards for node in shard}


def in_shard(node_id, index, total, mine, known):
    """Whether shard ``index`` of ``total`` runs a test.

    Tests Greenbar knows go where the split put them; new tests are spread by
    a hash of their node id, the same in every shard, so each runs exactly once.
    """
    if node_id in known:
        return node_id in mine
    return zlib.crc32(node_id.encode()) % total == index - 1


def quarantined(greenbar, instance):
    """The node ids (``suite::name``) of the instance's quarantined tests."""
    response = greenbar.call("GET", f"/api/test-instance/{instance}/quarantine/", params={"format": "text"})
    return {line for line in response.text.splitlines() if line}
