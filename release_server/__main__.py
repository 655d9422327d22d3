"""``python -m release_server`` (and the zipapp) run the CLI."""

import sys

from release_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
