"""The hardening suite: disk full, crashes, races, hostile input, slow clients, secrets.

A package so that its conftest is imported as ``hardening.conftest`` and does not take the
module name ``conftest`` from ``tests/conftest.py``, which other test modules import.
"""
