"""``greenbar upload``: JUnit XML reports into one build, gzip-compressed while they stream.

Without a build number the reports make one new build; with one they are
added to that build, which is created under that number when missing. Each
request's Idempotency-Key is a digest of the files' content and the build,
so running the same CI step again stores nothing new.
"""

import glob
import gzip
import hashlib
import os
import sys
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1024 * 1024
REPORT_SUFFIXES = (".xml", ".xml.gz")
# the first bytes of a file in a folder that must show a <testsuite> element
SNIFF_BYTES = 64 * 1024
# in CI logs, a progress line at every tenth of the bytes, for uploads at least this large
LOG_FROM_BYTES = 1024 * 1024


class UsageError(Exception):
    """The command line names no report that can be read."""


def looks_like_report(path):
    """Whether a file found in a folder starts like a JUnit report (Maven leaves summaries beside them)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            return b"<testsuite" in stream.read(SNIFF_BYTES)
    except (OSError, EOFError):
        return False


def report_files(patterns):
    """The files that ``patterns`` name: files, globs, and folders (their JUnit *.xml and *.xml.gz)."""
    found = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.endswith(REPORT_SUFFIXES) and looks_like_report(p)
            )
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            raise UsageError(f"no report file matches {pattern!r}")
        found.extend(matches)
    unique = list(dict.fromkeys(path.resolve() for path in found))
    for path in unique:
        if not os.access(path, os.R_OK):
            raise UsageError(f"{path} cannot be read")
    return unique


def file_digest(path):
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def idempotency_key(*parts):
    """A key from the parts (instance, build, content digests): equal inputs, equal key."""
    return "greenbar-upload-" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:48]


class Progress:
    """Bytes read from the reports: a tqdm bar on a terminal, a plain line now and then otherwise."""

    def __init__(self, total, stream=sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.bar = None
        self.logged = 0
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, file=stream, desc="greenbar upload"
            )

    def update(self, count):
        """Count ``count`` more bytes sent."""
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        elif self.total >= LOG_FROM_BYTES and self.done * 10 // self.total > self.logged:
            self.logged = self.done * 10 // self.total
            print(
                f"greenbar: sent {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB ({self.logged * 10}%)",
                file=self.stream,
                flush=True,
            )

    def rewind(self, count):
        """Take back ``count`` bytes counted for an attempt that is being retried."""
        self.done -= count
        if self.bar is not None:
            self.bar.update(-count)

    def close(self):
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def gzip_stream(path, progress, sent):
    """Yield the file gzip-compressed (as it is when already gzip), counting the bytes read."""
    with open(path, "rb") as stream:
        head = stream.read(2)
        stream.seek(0)
        compress = None if head == GZIP_MAGIC else zlib.compressobj(6, zlib.DEFLATED, 31)
        while chunk := stream.read(CHUNK):
            progress.update(len(chunk))
            sent[0] += len(chunk)
            data = chunk if compress is None else compress.compress(chunk)
            if data:
                yield data
        if compress is not None:
            yield compress.flush()


def send_file(greenbar, path, url_path, key, progress, params=None):
    """Post one report (re-read from the start on each retry); return the reply."""
    sent = [0]

    def body():
        progress.rewind(sent[0])
        sent[0] = 0
        return gzip_stream(path, progress, sent)

    headers = {"Content-Type": "application/xml", "Content-Encoding": "gzip", "Idempotency-Key": key}
    response = greenbar.call("POST", url_path, body=body, headers=headers, params=params)
    reply = response.json()
    reply["replayed"] = response.headers.get("Idempotent-Replayed") == "true"
    return reply


def upload(greenbar, settings, patterns, out=sys.stdout):
    """Upload the reports; print per-status counts and the build's page. Return the replies."""
    files = report_files(patterns)
    digests = [file_digest(path) for path in files]
    progress = Progress(sum(path.stat().st_size for path in files))
    instance_id = greenbar.ensure_instance(settings.instance)
    fields = settings.build_fields()
    replies = []
    try:
        if "number" in fields:
            build = greenbar.ensure_build(instance_id, fields)
            first = 0
        else:
            # the first report makes the build; the key covers every file, so a rerun finds the same build
            query = dict(fields)
            key = idempotency_key(settings.instance, "new", *fields.items(), *digests)
            replies.append(
                send_file(
                    greenbar,
                    files[0],
                    f"/api/test-instance/{instance_id}/import/",
                    key,
                    progress,
                    params=query,
                )
            )
            build = replies[0]["build"]
            first = 1
        for path, digest in zip(files[first:], digests[first:], strict=True):
            key = idempotency_key(settings.instance, build["id"], digest)
            url_path = f"/api/test-instance/{instance_id}/test-build/{build['id']}/import/"
            replies.append(send_file(greenbar, path, url_path, key, progress))
    finally:
        progress.close()
    totals = {}
    for reply in replies:
        for status, count in reply["cases"].items():
            totals[status] = totals.get(status, 0) + count
    counts = ", ".join(
        f"{status} {totals.get(status, 0)}" for status in ("SUCCESS", "FAILED", "ERROR", "SKIPPED", "flaky")
    )
    print(
        f"greenbar: {len(files)} report(s), {totals.get('total', 0)} cases into build #{build['number']}"
        f" of {settings.instance} ({counts})",
        file=out,
    )
    replayed = sum(reply["replayed"] for reply in replies)
    if replayed:
        print(f"greenbar: {replayed} of them had been uploaded before: nothing new was stored", file=out)
    print(f"greenbar: {greenbar.build_page(build['id'])}", file=out)
    return replies
