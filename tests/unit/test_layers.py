"""The layering rules hold: the import contracts in pyproject.toml, checked by import-linter
(as `make lint` does), and a contract the code breaks on purpose is reported broken."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from core.settings import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layering_contracts_are_kept():
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    done = _lint()
    assert done.returncode == 0, done.stdout + done.stderr
    # Every contract declared was checked (none skipped, e.g. by a typo in its type).
    assert f"{len(contracts)} kept, 0 broken" in done.stdout


def test_a_broken_contract_is_reported(tmp_path):
    # The API does import core (core.tasks): a contract forbidding it must fail.
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_packages =\n    core\n    api\n\n"
        "[importlinter:contract:no-core]\nname = The API imports no core\n"
        "type = forbidden\nsource_modules =\n    api\nforbidden_modules =\n    core.tasks\n"
    )
    done = _lint("--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout and "api.recognitions -> core.tasks" in done.stdout
