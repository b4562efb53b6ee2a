"""Many trackers over the local Trino-protocol, Sheets and Airtable servers: a studio's
refresh job in miniature (or at full size, for bench/refresh_scale.py).

`Farm.build(...)` writes a project (the mini fixture plus N generated trackers, spread over
spreadsheets, Airtable bases and files), starts the three servers with the given query
latency and quotas, and points a `farm` target at them. Each generated tracker runs
`farm_roster` (up to 36 movies: several Airtable write batches) with its own
`min_budget`, so every query and nearly every result is its own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.mini_data import copy_project, tables
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key
from tests.servers.trino_server import TrinoProtocolServer

TOKEN = "pat-farm-secret-token"
SERVICE_ACCOUNT = "genesis-farm@genesis-test.iam.gserviceaccount.com"
_KEY: list[str] = []  # one RSA key per process: generating one takes a while


ROSTER = """name: farm_roster
from: movie
fields: [movie.movie_id, movie.title, movie.status, movie.budget_usd]
filters: ["movie.budget_usd > {{ min_budget }}"]
parameters:
  min_budget: {type: "decimal(18,2)", default: 0}
sort: [movie.movie_id]
"""


def stable_fraction(text: str) -> float:
    """0 <= x < 1, the same for the same text in every process."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def latency_between(low: float, high: float) -> Callable[[str], float]:
    """A per-query latency in [low, high], fixed by the query's SQL (so runs compare)."""
    return lambda sql: low + (high - low) * stable_fraction(sql)


@dataclass
class Farm:
    root: Path
    project: Path
    trino: TrinoProtocolServer
    sheets: SheetsServer
    airtable: AirtableServer
    trackers: dict[str, dict] = field(default_factory=dict)  # name -> kind, where, schedule
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path, *, sheets: int = 8, spreadsheets: int = 3, airtable: int = 6, bases: int = 2,
              files: int = 6, latency: float | Callable[[str], float] = 0.0, write_quota: int = 60,
              read_quota: int = 60, window_seconds: float = 60.0, airtable_penalty: float = 30.0,
              schedule: Callable[[int, str], str | None] | None = None, extra: dict[str, str] | None = None,
              prefix: str = "t", tabs_exist: bool = False) -> Farm:
        """`tabs_exist`: the Sheets tabs are there (empty) before the first refresh, as in a
        running studio; otherwise the first refresh creates them (two more reads each)."""
        root.mkdir(parents=True, exist_ok=True)
        project = copy_project(root / "project")
        trino = TrinoProtocolServer(latency=latency, poll_wait=0.2).start()
        for name, table in tables().items():
            trino.load_table(f"iceberg.studio.{name}", table)
        sheet_server = SheetsServer(write_quota=write_quota, read_quota=read_quota,
                                    window_seconds=window_seconds).start()
        airtable_server = AirtableServer(TOKEN, requests_per_second=5, penalty_seconds=airtable_penalty).start()
        if not _KEY:
            _KEY.append(new_private_key())
        credentials = sheet_server.write_service_account(root / "service-account.json", SERVICE_ACCOUNT, _KEY[0])
        farm = cls(root, project, trino, sheet_server, airtable_server,
                   env={"FARM_AIRTABLE_TOKEN": TOKEN})
        (project / "genesis.yaml").write_text(f"""name: farm
default_target: farm
targets:
  local: {{engine: duckdb, warehouse: .genesis/warehouse, destinations: local}}
  farm:
    engine: trino
    destinations: live
    trino: {{host: 127.0.0.1, port: {trino.port}, http_scheme: http, user: genesis, catalog: iceberg, schema: studio}}
    google_sheets: {{credentials: "{credentials}", endpoint: "{sheet_server.url}"}}
    airtable: {{token: "{{{{ env.FARM_AIRTABLE_TOKEN }}}}", endpoint: "{airtable_server.url}"}}
""")
        for s in range(spreadsheets):
            tabs = tuple(f"Tab {i}" for i in range(s, sheets, spreadsheets)) if tabs_exist else ()
            sheet_server.create_spreadsheet(f"sheet{s:02d}", title=f"Office {s}", sheets=tabs or ("Sheet1",))
        for b in range(bases):
            airtable_server.add_table(f"app{b:02d}", "People's own table")
        kinds = [("sheets", i) for i in range(sheets)] + [("airtable", i) for i in range(airtable)] \
            + [("file", i) for i in range(files)]
        for n, (kind, i) in enumerate(kinds):
            name = f"{prefix}{n:03d}-{kind}"
            if kind == "sheets":
                where = {"type": "google_sheets", "spreadsheet_id": f"sheet{i % spreadsheets:02d}",
                         "worksheet": f"Tab {i}"}
            elif kind == "airtable":
                where = {"type": "airtable", "base_id": f"app{i % bases:02d}", "table": f"Budget {i}"}
            else:
                where = {"type": "file", "path": f"out/{name}.csv"}
            farm.add_tracker(name, where, min_budget=(n * 23_000) % 800_000,
                             schedule=schedule(n, kind) if schedule else None)
        (project / "inputs" / "farm_roster.yaml").write_text(ROSTER)
        for path, text in (extra or {}).items():
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text(text)
        return farm

    def add_tracker(self, name: str, destination: dict, *, min_budget: int = 0, schedule: str | None = None,
                    checks: str = "") -> None:
        lines = [f"name: {name}", "input: farm_roster", f"parameters: {{min_budget: {min_budget}}}",
                 f"destination: {json.dumps(destination)}", "key: [movie.movie_id]", "mode: upsert"]
        if schedule:
            lines.append(f'schedule: "{schedule}"')
        if checks:
            lines.append(checks)
        (self.project / "trackers" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
        self.trackers[name] = {"kind": destination["type"], "where": destination, "schedule": schedule}

    def stop(self) -> None:
        for server in (self.trino, self.sheets, self.airtable):
            server.stop()

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what the destinations hold -------------------------------------------------------

    def state(self, name: str) -> Any:
        """What tracker `name`'s destination holds now, comparable across runs (no stamps)."""
        where = self.trackers[name]["where"]
        if where["type"] == "google_sheets":
            if where["spreadsheet_id"] not in self.sheets.books or not self.sheets.has_sheet(
                    where["spreadsheet_id"], where["worksheet"]):
                return None
            grid = self.sheets.grid(where["spreadsheet_id"], where["worksheet"])
            return [row for row in grid if any(v is not None for v in row)]
        if where["type"] == "airtable":
            try:
                rows = self.airtable.rows(where["base_id"], where["table"])
            except Exception:  # noqa: BLE001 - no such table yet
                return None
            return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
        path = self.project / where["path"]
        return path.read_bytes() if path.exists() else None

    def states(self) -> dict[str, Any]:
        return {name: self.state(name) for name in self.trackers}


def copy_farm_project(farm: Farm, dest: Path) -> Path:
    shutil.copytree(farm.project, dest)
    return dest
