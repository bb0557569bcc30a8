"""Shared fixtures for the integration tests.

Binaries come from $M365_BUILD/bin (set by `make check-integration`).
Fixtures for the emulator, a repository and a mounted filesystem live here so
that every test area (snapshots, connect, restore, live) uses the same ones.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
BIN = BUILD / "bin"
SANITIZE = os.environ.get("M365_SANITIZE", "")


def binary(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make' first")
    return str(path)
