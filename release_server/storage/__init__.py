"""Storage backends behind one seam (base.py); the directory (fs.py) is the default."""

from .base import Listing, Reader, Storage, Writer
from .fs import DirectoryStorage

__all__ = ["DirectoryStorage", "Listing", "Reader", "Storage", "Writer"]
