"""Storage backends behind one seam (base.py); the directory (fs.py) is the default, a
bucket (s3.py, with the optional boto3) is chosen by STORAGE_URL."""

from pathlib import Path

from .base import Listing, Reader, Storage, Writer
from .fs import DirectoryStorage

__all__ = ["DirectoryStorage", "Listing", "Reader", "Storage", "Writer", "open_storage"]


def open_storage(url: str, directory: Path) -> Storage:
    """The bucket ``url`` names (``s3://...``) when set, else the directory. boto3 is
    imported only for a bucket; without it this raises s3_client.MissingBoto3."""
    if url:
        from .s3 import S3Storage

        return S3Storage(url)
    return DirectoryStorage(directory)
