"""Alarms against a real Prometheus: a group's alarm watched for the whole deployment stops it
with ALARM_ACTIVE and rolls it back (DEPLOYMENT_STOP_ON_ALARM) when the backend's error counter
rises mid-deployment; quiet, the deployment succeeds; overrideAlarmConfiguration is honoured;
Prometheus alerting rules work as alarms; ignorePollAlarmFailure decides what an unreachable
Prometheus does. Prometheus also scrapes the server's own /metrics."""

import json

import pytest

from hostsim import wait_for, wait_for_status
from monitoring import Backend, Prometheus, deploy, revision, setup_group
from sources import free_port

RULES = """groups:
  - name: backend
    rules:
      - alert: BackendErrors
        expr: test_errors_total > 0
"""


@pytest.fixture
def backend():
    backend = Backend()
    yield backend
    backend.stop()


@pytest.fixture
def prometheus(tmp_path):
    prometheus = Prometheus(tmp_path)
    yield prometheus
    prometheus.stop()


@pytest.fixture
def server(landfall_factory, prometheus, backend):
    """A server watching alarms every second against a Prometheus that scrapes the backend and
    the server itself (with its metrics token)."""
    server = landfall_factory(start=False)
    server.start("--prometheus-url", prometheus.url, "--alarm-poll-interval", "1")
    address = server.endpoint.split("://", 1)[1]
    prometheus.start(
        [("backend", backend.address, "/metrics", None),
         ("landfall", address, "/metrics", server.data_dir / "metrics-token")],
        rules=RULES,
    )
    prometheus.wait_up("backend")
    return server


def outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return out


def content(out, host):
    path = out / host
    return path.read_text().strip() if path.exists() else None


def test_an_alarm_stops_the_deployment_and_rolls_it_back(server, cd, hosts, backend, prometheus, tmp_path):
    out = outputs(tmp_path)
    for name in ["web-1", "web-2"]:
        hosts(name, start=False, role="web").start(TEST_HOST=name, OUT_DIR=str(out))
    created = server.landfall("alarm", "create", "http-errors", "--query", "sum(test_errors_total)",
                              "--threshold", "0", "--description", "any backend error")
    assert created.ok, created.stderr
    alarms = json.dumps({"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "http-errors"}]})
    rollback = json.dumps({"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]})
    setup_group(server, extra=("--alarm-configuration", alarms, "--auto-rollback-configuration", rollback))

    # Quiet: the deployment succeeds, watched all along.
    first = deploy(server, revision(tmp_path, "v1", slow_seconds=1))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    assert [content(out, h) for h in ["web-1", "web-2"]] == ["v1", "v1"]

    # The errors start while v2 is on its first host.
    second = deploy(server, revision(tmp_path, "v2", slow_seconds=4))
    wait_for(lambda: cd.get_deployment(deploymentId=second)["deploymentInfo"]["deploymentOverview"]["InProgress"] > 0,
             timeout=30, message="v2 to reach its first host")
    backend.errors = 3
    stopped = wait_for_status(cd, second, timeout=60)
    assert stopped["status"] == "Stopped", stopped
    assert stopped["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert "http-errors" in stopped["errorInformation"]["message"]
    rollback_id = stopped["rollbackInfo"]["rollbackDeploymentId"]
    rolled_back = wait_for_status(cd, rollback_id, timeout=60)
    assert rolled_back["status"] == "Succeeded", rolled_back
    assert rolled_back["creator"] == "codeDeployRollback"
    # Whatever v2 reached is back on v1; the rest never left it.
    assert [content(out, h) for h in ["web-1", "web-2"]] == ["v1", "v1"]

    # The timeline says what happened, and the alarm shows ALARM.
    events = server.landfall("events", second, "--output", "json")
    assert events.ok, events.stderr
    kinds = [event["type"] for event in events.json]
    assert "AlarmSeen" in kinds and "RollbackStarted" in kinds
    assert kinds.index("AlarmSeen") < kinds.index("RollbackStarted")
    listed = server.landfall("alarm", "list", "--output", "json")
    assert listed.json[0]["state"]["state"] == "ALARM", listed.json

    # Redeploying with the alarm overridden (disabled) succeeds while it still fires.
    third = deploy(server, revision(tmp_path, "v3", slow_seconds=2), "--override-alarm-configuration",
                   json.dumps({"enabled": False}))
    assert wait_for_status(cd, third, timeout=60)["status"] == "Succeeded"
    assert [content(out, h) for h in ["web-1", "web-2"]] == ["v3", "v3"]

    # A Prometheus alerting rule is an alarm too: firing, it stops the next deployment.
    firing = 'ALERTS{alertname="BackendErrors",alertstate="firing"}'
    wait_for(lambda: any(v == 1 for _, v in prometheus.query(firing)), 30, message="the alerting rule to fire")
    fourth = deploy(server, revision(tmp_path, "v4", slow_seconds=4), "--override-alarm-configuration",
                    json.dumps({"enabled": True, "alarms": [{"name": "BackendErrors"}]}))
    stopped = wait_for_status(cd, fourth, timeout=60)
    assert (stopped["status"], stopped["errorInformation"]["code"]) == ("Stopped", "ALARM_ACTIVE")
    assert "BackendErrors" in stopped["errorInformation"]["message"]

    # Prometheus scrapes the server's own metrics with its token.
    prometheus.wait_up("landfall")
    stopped_count = 'landfall_deployments{status="Stopped"}'
    wait_for(lambda: [v for _, v in prometheus.query(stopped_count)] == [2.0], 30, message="both stops in Prometheus")


def test_an_unreadable_alarm_stops_the_deployment_unless_ignored(landfall_factory, hosts_of, tmp_path):
    # Nothing listens on this port: the alarm's state cannot be read.
    server = landfall_factory(start=False)
    server.start("--prometheus-url", f"http://127.0.0.1:{free_port()}", "--alarm-poll-interval", "1")
    cd = server.client()
    out = outputs(tmp_path)
    hosts_of(server, "web-1").start(TEST_HOST="web-1", OUT_DIR=str(out))
    assert server.landfall("alarm", "create", "errors", "--query", "up", "--comparison", "<", "--threshold", "1").ok
    ignored = json.dumps({"enabled": True, "ignorePollAlarmFailure": True, "alarms": [{"name": "errors"}]})
    setup_group(server, extra=("--alarm-configuration", ignored))
    first = deploy(server, revision(tmp_path, "v1", slow_seconds=3))
    assert wait_for_status(cd, first)["status"] == "Succeeded"

    strict = json.dumps({"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "errors"}]})
    second = deploy(server, revision(tmp_path, "v2", slow_seconds=3), "--override-alarm-configuration", strict)
    stopped = wait_for_status(cd, second)
    assert (stopped["status"], stopped["errorInformation"]["code"]) == ("Stopped", "ALARM_ACTIVE"), stopped
    assert "could not be read" in stopped["errorInformation"]["message"]
    # No rollback was asked for.
    assert "rollbackDeploymentId" not in stopped.get("rollbackInfo", {})


def test_an_alarm_during_a_zonal_monitor_wait_stops_before_the_next_zone(server, cd, hosts, backend, tmp_path):
    out = outputs(tmp_path)
    for name, zone in [("web-a", "a"), ("web-b", "b")]:
        hosts(name, start=False, role="web", zone=zone).start(TEST_HOST=name, OUT_DIR=str(out))
    assert server.landfall("alarm", "create", "errors", "--query", "sum(test_errors_total)", "--threshold", "0").ok
    zonal = json.dumps({"firstZoneMonitorDurationInSeconds": 60, "monitorDurationInSeconds": 60})
    created = server.aws("deploy", "create-deployment-config", "--deployment-config-name", "by-zone",
                         "--minimum-healthy-hosts", "type=HOST_COUNT,value=0", "--zonal-config", zonal)
    assert created.ok, created.stderr
    alarms = json.dumps({"enabled": True, "alarms": [{"name": "errors"}]})
    setup_group(server, config="by-zone", extra=("--alarm-configuration", alarms))
    deployment = deploy(server, revision(tmp_path, "v1"))
    # Zone a is done and the deployment bakes; the errors start during the wait.
    wait_for(lambda: cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] == "Baking",
             timeout=30, message="the monitor wait after zone a")
    backend.errors = 1
    stopped = wait_for_status(cd, deployment, timeout=30)
    assert (stopped["status"], stopped["errorInformation"]["code"]) == ("Stopped", "ALARM_ACTIVE"), stopped
    assert content(out, "web-a") == "v1" and content(out, "web-b") is None, "zone b was never touched"
    assert stopped["deploymentOverview"]["Succeeded"] == 1 and stopped["deploymentOverview"]["Skipped"] == 1
