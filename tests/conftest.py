"""Shared fixtures. Each service's fixtures live in tests/fixtures/<service>.py."""

pytest_plugins = [
    "tests.fixtures.paths",
]
