"""deploy/fleet keeps its contracts: the accounts file is what the generator writes, the node
configuration is valid for the installed nats-server, the compose file wires three nodes,
PostgreSQL and stateless workers, and a hostile vehicle id never reaches a file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from edge_agent.fleet.cluster import nats_server_binary
from edge_agent.fleet.deploy_config import render_accounts
from edge_agent.simulator.certs import DevCA
from edge_agent.simulator.cloud import main as cloud_main
from fixtures.real_parts import missing

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "deploy/fleet"


def test_accounts_file_is_what_fleet_accounts_writes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cloud_main(["fleet-accounts", "--vehicle", "VIN0001", "--vehicle", "VIN0002"]) == 0
    written = capsys.readouterr().out
    assert written == (FLEET / "accounts.conf").read_text()
    assert written == render_accounts(["VIN0001", "VIN0002"])
    assert "$WORKER_PASSWORD" in written  # from the node's environment, never in the file


@pytest.mark.parametrize("vehicle", ["a.b", "x>", "*", "../etc", "v id", "$SYS", "a" * 65, ""])
def test_fleet_accounts_refuses_a_vehicle_id_nats_would_read_as_more(
    vehicle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cloud_main(["fleet-accounts", "--vehicle", vehicle]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


def test_node_configuration_is_valid_for_the_installed_nats_server(tmp_path: Path) -> None:
    binary = nats_server_binary()
    if binary is None:
        missing("nats-server is not installed (scripts/system-deps nats-server)")
    tls = tmp_path / "tls"
    ca = DevCA.create(tls, name="ca")
    ca.issue_server(tls, ["nats-1"], stem="server")
    text = (FLEET / "nats.conf").read_text()
    assert text.count("/etc/nats/tls/") == 9
    (tmp_path / "nats.conf").write_text(
        text.replace("/etc/nats/tls", str(tls)).replace("/data", str(tmp_path / "data"))
    )
    (tmp_path / "accounts.conf").write_text((FLEET / "accounts.conf").read_text())
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "NATS_NAME": "nats-1",
        "WORKER_PASSWORD": "not-a-real-one",
        **{f"NATS_ROUTE_{n}": f"nats-route://nats-{n}:6222" for n in (1, 2, 3)},
    }
    command = [binary, "-t", "-c", str(tmp_path / "nats.conf")]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout + result.stderr
    # Without the environment the node refuses to start, naming what is missing.
    del environment["WORKER_PASSWORD"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode != 0
    assert "WORKER_PASSWORD" in result.stdout + result.stderr


def test_compose_runs_three_nodes_postgres_and_stateless_workers() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the demo extra (make test)")
    compose = yaml.safe_load((FLEET / "compose.yaml").read_text())
    services = compose["services"]
    nodes = [f"nats-{n}" for n in (1, 2, 3)]
    assert set(services) == {*nodes, "postgres", "worker"}
    for node in nodes:
        environment = services[node]["environment"]
        assert environment["NATS_NAME"] == node
        assert {environment[f"NATS_ROUTE_{n}"] for n in (1, 2, 3)} == {
            f"nats-route://{other}:6222" for other in nodes
        }
        assert f"{node}:/data" in services[node]["volumes"]
    worker = services["worker"]
    command = worker["command"]
    urls = command[command.index("--nats") + 1].split(",")
    assert [u.rsplit("@", 1)[1] for u in urls] == [f"{node}:4222" for node in nodes]
    assert all(u.startswith("tls://") for u in urls)
    assert command[command.index("--db") + 1].startswith("postgresql://")
    assert worker["build"]["dockerfile"] == "deploy/fleet/Containerfile"
    assert "volumes" not in worker or all(v.endswith(":ro") for v in worker["volumes"])
