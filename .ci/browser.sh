#!/usr/bin/env bash
# Install what the browser tests need, from the package registries only:
# Debian's chromium and its matching chromedriver, and Selenium from PyPI.
# No browser or driver download: Selenium is pointed at the Debian binaries.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "browser.sh: $(chromium --version 2>/dev/null) already installed"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver fonts-dejavu-core >/dev/null
    echo "browser.sh: installed $(chromium --version 2>/dev/null)"
fi

# PYTHON: the interpreter that runs pytest (default python3).
"${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check "selenium>=4.20"
