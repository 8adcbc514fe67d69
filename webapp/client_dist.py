"""The client package (``webapp/client``) as a wheel, assembled in memory when first asked for.

A wheel of pure Python is a zip of the package's files plus a ``.dist-info``
folder, so the server needs no build tool: it reads ``pyproject.toml`` with
:mod:`tomllib` and writes the metadata itself. Building it from the files the
server runs from means the download always matches the server's version;
entries carry a fixed date, so the same sources give the same bytes.
"""

import base64
import functools
import hashlib
import io
import tomllib
import zipfile
from pathlib import Path

CLIENT = Path(__file__).resolve().parent / "client"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def project():
    """The ``[project]`` table of the client's pyproject.toml."""
    return tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]


def filename():
    """The wheel's file name, such as ``greenbar_client-0.1.0-py3-none-any.whl``."""
    meta = project()
    return f"{meta['name'].replace('-', '_')}-{meta['version']}-py3-none-any.whl"


def metadata(meta):
    """The METADATA file (core metadata 2.1)."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {meta['name']}",
        f"Version: {meta['version']}",
        f"Summary: {meta['description']}",
        f"Requires-Python: {meta['requires-python']}",
        *(f"Requires-Dist: {requirement}" for requirement in meta["dependencies"]),
    ]
    return "\n".join(lines) + "\n\n" + (CLIENT / meta["readme"]).read_text()


def entry_points(meta):
    """The entry_points.txt file: the ``greenbar`` script and the pytest plugin."""
    groups = {"console_scripts": meta.get("scripts", {}), **meta.get("entry-points", {})}
    return "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items()) + "\n"
        for group, entries in groups.items()
    )


def record_line(name, data):
    """One RECORD line: the path, its urlsafe SHA-256 and its size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


@functools.cache
def wheel():
    """The wheel's bytes (built once per process)."""
    meta = project()
    dist_info = f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    files = {
        str(path.relative_to(CLIENT)): path.read_bytes()
        for path in sorted((CLIENT / "greenbar_client").glob("*.py"))
    }
    files[f"{dist_info}/METADATA"] = metadata(meta).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: greenbar\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/entry_points.txt"] = entry_points(meta).encode()
    record = [record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, FIXED_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return buffer.getvalue()
