"""Shared fixtures. Each service's fixtures live in tests/fixtures/<service>.py."""

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.database",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.app",
    "tests.fixtures.prefect",
]
