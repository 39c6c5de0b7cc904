"""The deployment's real stack, shared by the deploy and UI stages: PostgreSQL, the code server,
dagster-webserver and dagster-daemon as separate processes (lake_dev.deploy_local, what
`make deploy-local` runs), on an offline mirror, with a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

# Dagster exports no public name for a backfill's status.
from dagster._core.execution.backfill import BulkActionStatus

from lake_assets_tests.helpers import poll
from lake_dev import generator
from lake_dev.deploy_local import Deployment, free_port

LOCATION = {"repositoryLocationName": "lake_assets", "repositoryName": "__repository__"}
# What the UI's Materialize and backfill dialogs send; the deploy and containers stages share them.
BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}"""


@dataclass
class Stack:
    deployment: Deployment
    mirror: Path
    posts: list[dict]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.deployment.url}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"GraphQL answered {e.code}: {e.read()[:2000]!r}") from None
        assert "errors" not in data, data["errors"]
        return data["data"]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.deployment.home))

    def warehouse_counts(self, table: str) -> dict[str, int]:
        """Rows per month of a warehouse table, read beside the stack (read-only)."""
        con = duckdb.connect(self.deployment.env["DUCKDB_PATH"], read_only=True)
        try:
            rows = con.execute(
                f"SELECT strftime(source_month, '%Y-%m'), count(*) FROM nyc_taxi.{table} GROUP BY 1"
            ).fetchall()
        finally:
            con.close()
        return dict(rows)

    def backfill_done(self, backfill_id: str) -> BulkActionStatus | None:
        """The backfill's status once it and every run it launched have ended; else None."""
        with self.instance() as instance:
            backfill = instance.get_backfill(backfill_id)
            if backfill.status == BulkActionStatus.REQUESTED:
                return None
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            ended = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
            if any(r.status not in ended for r in runs):
                return None
            return backfill.status

    def wait(self, condition, timeout: float, what: str):
        value = poll(condition, timeout, 1)
        if value:
            return value
        logs = {n: (self.deployment.root / f"{n}.log") for n in ("daemon", "code_server")}
        tails = "\n".join(
            f"--- {n}\n{p.read_text(errors='replace')[-2500:]}" for n, p in logs.items()
        )
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def _webhook() -> tuple[http.server.ThreadingHTTPServer, list[dict]]:
    posts: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            posts.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, posts


def running_stack(
    root: Path, months: list[str], rows: dict[str, int], extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Generates the mirror, starts the stack, yields it, and stops it."""
    mirror = root / "mirror"
    generator.write_mirror(
        mirror, tuple(rows), [date.fromisoformat(f"{m}-01") for m in months], rows
    )
    server, posts = _webhook()
    env = {
        **generator.mirror_settings(mirror),
        "LAKE_DIR": str(root / "lake"),
        "DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "TLC_START_MONTH": months[0],
        "TLC_END_MONTH": months[-1],
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{server.server_address[1]}/hooks/deploy",
        **(extra_env or {}),
    }
    deployment = Deployment(
        root / "stack", env, pg_port=free_port(), grpc_port=free_port(), ui_port=free_port()
    )
    saved = dict(os.environ)
    try:
        deployment.start()
        # This process reads the same instance (deploy/dagster.yaml takes its address from env).
        os.environ.update(
            {k: v for k, v in deployment.process_env().items() if k.startswith("DAGSTER_")}
        )
        yield Stack(deployment, mirror, posts)
    finally:
        deployment.stop()
        server.shutdown()
        os.environ.clear()
        os.environ.update(saved)
