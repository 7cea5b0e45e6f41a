"""A zonal deployment configuration over real hosts in three zones (their `zone` tag): one zone
at a time in name order, the deployment Baking through the monitor wait after each zone but the
last, and hosts without a zone last of all."""

import json

from hostsim import wait_for_status
from monitoring import deploy, revision, setup_group


def test_zones_one_at_a_time_with_monitor_waits(server, cd, hosts, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fleet = {"web-a": "a", "web-c": "c", "web-b": "b", "web-none": None}
    for name, zone in fleet.items():
        tags = {"role": "web", **({"zone": zone} if zone else {})}
        hosts(name, start=False, **tags).start(TEST_HOST=name, OUT_DIR=str(out))
    created = server.aws(
        "deploy", "create-deployment-config", "--deployment-config-name", "by-zone", "--compute-platform", "Server",
        "--minimum-healthy-hosts", "type=HOST_COUNT,value=0",
        "--zonal-config", json.dumps({"firstZoneMonitorDurationInSeconds": 3, "monitorDurationInSeconds": 2,
                                      "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 0}}),
    )
    assert created.ok, created.stderr
    setup_group(server, config="by-zone")
    deployment = deploy(server, revision(tmp_path, "v1"))
    assert wait_for_status(cd, deployment)["status"] == "Succeeded"
    assert sorted(p.name for p in out.iterdir()) == sorted(fleet)

    events = server.landfall("events", deployment, "--output", "json").json
    zones = [e for e in events if e["type"] == "ZoneStarted"]
    assert [z["message"] for z in zones] == [
        "Deploying to zone a (1 of 4).", "Deploying to zone b (2 of 4).", "Deploying to zone c (3 of 4).",
        "Deploying to the hosts without a zone (4 of 4).",
    ]
    done = {e["instanceIds"][0]: e["time"] for e in events
            if e["type"] == "InstanceStatusChanged" and e["status"] == "Succeeded"}
    started = {e["instanceIds"][0]: e["time"] for e in events if e["type"] == "WaveStarted"}
    # Each zone starts only after the previous one is done and its monitor wait is over.
    assert started["web-b"] - done["web-a"] >= 3.0
    assert started["web-c"] - done["web-b"] >= 2.0
    assert started["web-none"] - done["web-c"] >= 2.0
    statuses = [e["status"] for e in events if e["type"] == "StatusChanged"]
    assert statuses == ["InProgress", "Baking", "InProgress", "Baking", "InProgress", "Baking", "InProgress",
                        "Succeeded"]
