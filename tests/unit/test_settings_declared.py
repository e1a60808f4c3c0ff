"""Each setting is declared once: one variable a field, read by its own parser, and the
README's configuration table names exactly the variables there are."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from core.rates import Rate
from core.settings import ENV_VARIABLE, PROJECT_ROOT, ConfigError, Settings

# Fixed parts of the API's published contract, deliberately not configurable.
NOT_FROM_THE_ENVIRONMENT = {"max_coordinate", "max_wait_seconds"}
# Read by core.logs when logging is configured, before any Settings exist.
READ_BY_LOGGING = {"DOODLE_LOG_FORMAT", "LOG_LEVEL"}

VARIABLES = {
    f.name: f.metadata[ENV_VARIABLE] for f in fields(Settings) if ENV_VARIABLE in f.metadata
}


def readme_configuration_variables() -> set[str]:
    """The variables named in the first column of the README's configuration table."""
    section = (PROJECT_ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_every_field_but_the_fixed_ones_has_a_variable() -> None:
    without = {f.name for f in fields(Settings)} - set(VARIABLES)
    assert without == NOT_FROM_THE_ENVIRONMENT


def test_no_two_fields_share_a_variable() -> None:
    assert len(set(VARIABLES.values())) == len(VARIABLES)


def test_the_readme_table_names_the_same_variables() -> None:
    assert readme_configuration_variables() == set(VARIABLES.values()) | READ_BY_LOGGING


def _as_variable(value: object) -> str:
    """How an operator would write a field's value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


@pytest.mark.parametrize(
    "name", [f.name for f in fields(Settings) if f.name in VARIABLES and f.default is not None]
)
def test_a_default_written_out_reads_back_as_itself(name: str) -> None:
    # A parser that returns the wrong type (or drops a value) fails here.
    default = getattr(Settings(), name)
    read = getattr(Settings.from_env({VARIABLES[name]: _as_variable(default)}), name)
    assert read == default and type(read) is type(default)


def test_unset_and_blank_variables_keep_every_default() -> None:
    blank = {variable: "  " for variable in VARIABLES.values()}
    assert Settings.from_env(blank) == Settings() == Settings.from_env({})
    assert all(f.default is not MISSING for f in fields(Settings))


@pytest.mark.parametrize(
    ("variable", "raw", "says"),
    [
        ("DOODLE_TRAIN_EPOCHS", "eight", "must be an integer, got 'eight'"),
        ("DOODLE_GOLDEN_FRACTION", "a fifth", "must be a number, got 'a fifth'"),
        ("DOODLE_TRAIN_NEW_ROWS_ONLY", "maybe", "must be true or false, got 'maybe'"),
        ("DOODLE_WORKER_POOL", "gevent", "must be one of solo, prefork, threads, got 'gevent'"),
        ("REDIS_URL", "http://cache:6379/0", "is not usable: expected redis://"),
        ("DOODLE_RATE_AUTH_FAILURES", "20/day", "is not a rate: expected N/second"),
    ],
)
def test_a_bad_value_of_each_kind_names_its_variable(variable: str, raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({variable: raw})
    assert str(error.value).startswith(f"{variable} {says}")


@pytest.mark.parametrize(
    "name",
    [
        f.name
        for f in fields(Settings)
        if f.name in VARIABLES and f.type in ("int", "float", "bool")
    ],
)
def test_every_number_and_switch_refuses_words(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{VARIABLES[name]} must be "):
        Settings.from_env({VARIABLES[name]: "lots"})


def test_values_are_read_stripped() -> None:
    settings = Settings.from_env(
        {
            "PORT": " 9000 ",
            "DOODLE_METRICS_DIR": " /tmp/metrics ",
            "DOODLE_RATE_GUESSES": " off ",
            "DOODLE_WORKER_POOL": " threads ",
        }
    )
    assert settings.port == 9000
    assert settings.metrics_dir == Path("/tmp/metrics")
    assert settings.rate_guesses is None
    assert settings.worker_pool == "threads"
    assert Settings.from_env({"DOODLE_RATE_GUESSES": "5/minute"}).rate_guesses == Rate(5, 60)
