"""boto3 inside a zipapp (release-server-s3.pyz): botocore reads its service models and
CA bundle with ``open()``/``os.listdir()``, which cannot look inside a zip. So, once per
botocore version and archive, they are unpacked to the temp dir and botocore is pointed
at them (``AWS_DATA_PATH``, and ``AWS_CA_BUNDLE`` unless the user set it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
import zipfile
from pathlib import Path
from typing import Any


def unpack_botocore_data(botocore: Any) -> None:
    """Make botocore usable from a zip; does nothing when it is installed normally."""
    root = Path(botocore.__file__).parent
    if (root / "data").is_dir():
        return
    archive = getattr(getattr(botocore, "__loader__", None), "archive", None)
    if not archive:
        return
    stamp = os.stat(archive)
    name = f"release-server-botocore-{botocore.__version__}-{stamp.st_size:x}-{stamp.st_mtime_ns:x}"
    target = Path(tempfile.gettempdir()) / name
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=f".{name}-"))
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if member.startswith("botocore/data/") or member == "botocore/cacert.pem":
                    bundle.extract(member, partial)
        try:
            os.rename(partial, target)
        except OSError:  # another worker was first
            shutil.rmtree(partial, ignore_errors=True)
    data = str(target / "botocore" / "data")
    paths = [p for p in os.environ.get("AWS_DATA_PATH", "").split(os.pathsep) if p]
    os.environ["AWS_DATA_PATH"] = os.pathsep.join([*paths, data])
    if "AWS_CA_BUNDLE" not in os.environ:
        system = ssl.get_default_verify_paths().cafile
        with contextlib.suppress(OSError):
            if system and os.path.getsize(system):
                os.environ["AWS_CA_BUNDLE"] = system
                return
        os.environ["AWS_CA_BUNDLE"] = str(target / "botocore" / "cacert.pem")
