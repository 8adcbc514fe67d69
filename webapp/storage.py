"""Where stored files live: a local folder or an S3 bucket, chosen by ``GREENBAR_STORAGE_URL``.

- ``file:///path`` (the default is the ``storage`` folder in the instance folder)
  keeps objects as files under that folder;
- ``s3://bucket/prefix`` keeps them in S3 through boto3, which honours
  ``AWS_ENDPOINT_URL`` (the tests point it at a local moto server).

Both offer the same small interface: ``put``, ``open``, ``delete_many``,
``list_objects`` and ``download_url``. Keys are relative (``attachments/…``); the S3
backend prefixes them with the URL's prefix, so the instance role's IAM policy
can be limited to that prefix. This is the only module that imports boto3 for
storage.
"""

import functools
import os
import shutil
from datetime import datetime
from datetime import timezone
from pathlib import Path
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import current_app

# presigned download links are short-lived: long enough to start a download, no more
PRESIGN_SECONDS = 300
S3_DELETE_BATCH = 1000


class LocalStorage:
    """Objects as files under one folder; keys become relative paths."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key):
        """The file of ``key``; a key that would leave the folder is refused."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} leaves the storage folder")
        return path

    def put(self, key, stream):
        """Copy a binary stream into the object ``key`` (written aside, then renamed into place)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as target:
            shutil.copyfileobj(stream, target, 1024 * 1024)
        os.replace(partial, path)

    def open(self, key):
        """A binary file object of the object ``key``."""
        return open(self.path(key), "rb")

    def delete_many(self, keys):
        """Delete objects; missing ones are ignored (a delete may be repeated)."""
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def list_objects(self, prefix=""):
        """``(key, modified)`` of every stored object under ``prefix``, ``modified`` an aware UTC time."""
        base = self.root / prefix
        if not base.exists():
            return
        for path in base.rglob("*"):
            if path.is_file():
                modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                yield path.relative_to(self.root).as_posix(), modified

    def download_url(self, key, filename, content_type, inline):
        """Local objects are streamed by the app itself: no URL to redirect to."""
        return None


class KeptOpen:
    """A file object whose ``close`` does nothing: boto3's upload closes what it is given."""

    def __init__(self, stream):
        self.stream = stream

    def read(self, size=-1):
        """Read from the wrapped stream."""
        return self.stream.read(size)

    def seek(self, offset, whence=0):
        """Seek in the wrapped stream."""
        return self.stream.seek(offset, whence)

    def tell(self):
        """Position in the wrapped stream."""
        return self.stream.tell()

    def close(self):
        """Leave the wrapped stream open for its owner."""


class S3Storage:
    """Objects in one bucket, under one key prefix."""

    def __init__(self, bucket, prefix, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or make_s3_client()

    @functools.cached_property
    def image_origin(self):
        """Where presigned downloads point (scheme and host): thumbnails load from there."""
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.full_key("origin")}, ExpiresIn=60
        )
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def full_key(self, key):
        """The S3 key of ``key``: the prefix, then the key."""
        return self.prefix + key

    def put(self, key, stream):
        """Upload a binary stream (multipart for large files, as boto3 decides); the stream stays open."""
        self.client.upload_fileobj(KeptOpen(stream), self.bucket, self.full_key(key))

    def open(self, key):
        """A streaming body of the object ``key``."""
        return self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))["Body"]

    def delete_many(self, keys):
        """Delete objects in batches of S3's limit; missing ones are no error in S3."""
        keys = list(keys)
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = [{"Key": self.full_key(key)} for key in keys[start : start + S3_DELETE_BATCH]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def list_objects(self, prefix=""):
        """``(key, modified)`` of every stored object under ``prefix`` (keys without the storage prefix)."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key(prefix)):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :], item["LastModified"]

    def download_url(self, key, filename, content_type, inline):
        """A short-lived presigned GET whose answer carries our safe headers, not the uploader's."""
        disposition = "inline" if inline else "attachment"
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.full_key(key),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition(disposition, filename),
            },
            ExpiresIn=PRESIGN_SECONDS,
        )


def make_s3_client():
    """A boto3 S3 client; boto3 itself reads ``AWS_ENDPOINT_URL``, region and credentials."""
    import boto3
    from botocore.config import Config

    # SigV4 presigned URLs: the only kind newer regions accept, with X-Amz-Expires honoured
    return boto3.client("s3", config=Config(signature_version="s3v4"))


def content_disposition(disposition, filename):
    """A Content-Disposition header value with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def from_url(url, instance_path):
    """Build the storage a ``GREENBAR_STORAGE_URL`` names.

    :raise RuntimeError: for a scheme other than ``file`` or ``s3``, or an S3 URL without a bucket.
    """
    if not url:
        return LocalStorage(Path(instance_path) / "storage")
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(unquote(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise RuntimeError(f"GREENBAR_STORAGE_URL {url!r} names no bucket (s3://bucket/prefix)")
        return S3Storage(parts.netloc, unquote(parts.path))
    raise RuntimeError(f"GREENBAR_STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix")


def get():
    """The app's storage."""
    return current_app.extensions["greenbar_storage"]


def init_app(app):
    """Build the storage once, so a wrong URL stops the app at start-up."""
    app.extensions["greenbar_storage"] = from_url(app.config.get("STORAGE_URL", ""), app.instance_path)
