"""What every scenario sets up and tears down: a temporary folder for logs and data, the
processes (each its own process group), the object storage, embedded servers, the drawings."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from benchkit import REPO_ROOT
from benchkit.cpu import CpuMeter
from benchkit.inputs import load_drawings, request_bodies, seed_words
from benchkit.s3 import start_moto
from benchkit.systems import System, start_baseline, start_product
from devtools.processes import Processes


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="doodle-bench-"))
        self.procs = Processes(self.tmp, cwd=REPO_ROOT)
        self.stack = contextlib.ExitStack()  # embedded servers, if any
        self.keep_tmp = bool(args.keep_tmp)
        self.storage_groups: dict[str, int] = {}
        self.storage_url = ""
        self.storage = ""  # what the storage is, for the report (never the URL's secret)
        self.drawings = load_drawings(seed_words())
        self.bodies = request_bodies(self.drawings)
        self.words = [w for w, _ in self.drawings]

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.keep_tmp = True  # keep the servers' logs
        self.procs.stop()
        self.stack.close()
        if self.keep_tmp:
            print(f"kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_storage(self) -> str:
        """The storage URL both systems use: given, moto's S3 server, or a temporary folder."""
        args = self.args
        if args.storage_url:
            self.storage_url, self.storage = args.storage_url, "given (--storage-url)"
        elif args.storage == "s3":
            self.storage_url = start_moto(self.procs, "storage")
            self.storage_groups["storage"] = self.procs.pgid("storage")
            self.storage = "S3 over HTTP (moto server)"
        else:
            self.storage_url = (self.tmp / "objects").as_uri()
            self.storage = "temporary local folder"
        print(
            f"{len(self.bodies)} drawings of {len(set(self.words))} words; logs in {self.tmp}; "
            f"storage: {self.storage}",
            flush=True,
        )
        return self.storage_url

    def start_systems(self, names: Iterable[str]) -> dict[str, System]:
        if not self.storage_url:
            self.start_storage()
        systems: dict[str, System] = {}
        for name in names:
            if name == "baseline":
                systems[name] = start_baseline(self.procs, self.args, self.storage_url)
            elif name == "product":
                systems[name] = start_product(
                    self.procs, self.args, self.storage_url, self.tmp / "home", self.stack
                )
                if systems[name].player_id:  # the doodles name the player it issued
                    self.bodies = request_bodies(self.drawings, player_id=systems[name].player_id)
            else:
                raise ValueError(f"unknown system {name!r}")
        return systems

    def meter(self, systems: Mapping[str, System]) -> CpuMeter:
        groups = {k: v for s in systems.values() for k, v in s.groups.items()}
        return CpuMeter(groups | self.storage_groups)

    def check_alive(self, system: System) -> None:
        for name in [*system.groups, *self.storage_groups]:
            self.procs.check_alive(name)
