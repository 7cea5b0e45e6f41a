"""Blue/green for servers: two fleets of real hosts (agents running each bundle's app) behind
`landfall router`, its built-in proxy or a real HAProxy, with a load generator sending requests
through it the whole time. The group selects both fleets (role=web); each deployment's
targetInstances names the replacement one (color=blue or color=green)."""

import json
import socket
import time
import urllib.request

import pytest

from hostsim import wait_for, wait_for_status
from routers import SERVICE_ROLE, Load, Router, create_target_group, failures, revision, stop_apps, upload
from sources import free_port

FLEETS = {"blue": ["blue-0", "blue-1"], "green": ["green-0", "green-1"]}


@pytest.fixture
def server(landfall_factory):
    """A server that gives up on a host's health checks after 8 s (the default is 300 s)."""
    return landfall_factory(start=False).start("--traffic-timeout", "8")


@pytest.fixture(params=["builtin", "haproxy"])
def fleets(request, server, hosts, tmp_path):
    """Four hosts, two per fleet, each registered on standby in target group `web` (no traffic
    before a deployment's AllowTraffic), and the router in front of them."""
    ports = {}
    create_target_group(server, router=request.param)
    for color, names in FLEETS.items():
        for name in names:
            ports[name] = free_port()
            hosts(name, start=False, role="web", color=color).start(
                TEST_HOST=name, APP_PORT=str(ports[name]), APP_DIR=str(tmp_path / "apps" / name))
            register(server, name, ports[name])
    router = Router(server, request.param, tmp_path)
    cd = server.client()
    cd.create_application(applicationName="app")
    assert server.aws("s3", "mb", "s3://bundles").ok
    yield {"cd": cd, "router": router, "ports": ports}
    router.close()
    stop_apps(tmp_path, ports)


def register(server, name, port):
    registered = server.landfall("target-group", "register", "web", name, f"127.0.0.1:{port}", "--standby")
    assert registered.ok, registered.stderr


def create_group(cd, name, config="CodeDeployDefault.OneAtATime", action="KEEP_ALIVE", **extra):
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName=name, serviceRoleArn=SERVICE_ROLE,
        deploymentConfigName=config,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": action, "terminationWaitTimeInMinutes": 0},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
        },
        **extra,
    )


def start(server, cd, group, color, path, key, **extra):
    return cd.create_deployment(
        applicationName="app", deploymentGroupName=group, revision=upload(server, path, key),
        targetInstances={"tagFilters": [{"Key": "color", "Value": color, "Type": "KEY_AND_VALUE"}]}, **extra,
    )["deploymentId"]


def deploy(server, cd, group, color, path, key, **extra):
    deployment_id = start(server, cd, group, color, path, key, **extra)
    return deployment_id, wait_for_status(cd, deployment_id, timeout=240)


def targets(server):
    """Target group `web`'s targets by instance name."""
    listed = server.landfall("target-group", "list", "--output", "json")
    assert listed.ok, listed.stderr
    group = next(g for g in json.loads(listed.stdout) if g["name"] == "web")
    return {t["instanceName"]: t for t in group["targets"]}


def events(cd, deployment_id, target_id):
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
    return [(e["lifecycleEventName"], e["status"]) for e in target["instanceTarget"]["lifecycleEvents"]]


def answers(url, count=20):
    """The bodies of `count` requests through the router."""
    bodies = []
    for _ in range(count):
        with urllib.request.urlopen(url, timeout=5) as response:
            bodies.append(response.read().decode().strip())
    return bodies


def fleet_of(body):
    return body.split()[1].split("-")[0]


def serving_v1_on_blue(server, fleets, tmp_path, group):
    """Deploys v1 to the blue fleet (the green one, never started, is the original)."""
    cd = fleets["cd"]
    first, info = deploy(server, cd, group, "blue", revision(tmp_path, "v1"), "v1.tgz")
    assert info["status"] == "Succeeded", (failures(cd, first), fleets["router"].tail())
    assert {fleet_of(body) for body in answers(fleets["router"].url)} == {"blue"}
    return first


def test_blue_green_switch_drops_no_request(server, fleets, tmp_path):
    cd = fleets["cd"]
    create_group(cd, "web")
    serving_v1_on_blue(server, fleets, tmp_path, "web")

    with Load(fleets["router"].url) as load:
        load.wait_until_running()
        second, info = deploy(server, cd, "web", "green", revision(tmp_path, "v2"), "v2.tgz")
        load.wait_for_answer("v2 ")
    assert info["status"] == "Succeeded", (failures(cd, second), fleets["router"].tail())
    failed = [r for r in load.results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(load.results)} requests failed: {failed[:5]}"
    assert len(load.results) > 50, "the load ran through the deployment"
    # v1 came only from blue, v2 only from green; once green answered, blue stopped for good
    # shortly after (it drains once the green fleet took the traffic).
    for _, _, body in load.results:
        version = body.split()[0]
        assert (version, fleet_of(body)) in {("v1", "blue"), ("v2", "green")}, body
    assert load.results[-1][2].startswith("v2 ")
    assert {fleet_of(body) for body in answers(fleets["router"].url)} == {"green"}

    assert events(cd, second, "green-0")[-3:] == [
        ("BeforeAllowTraffic", "Succeeded"), ("AllowTraffic", "Succeeded"), ("AfterAllowTraffic", "Succeeded")]
    assert events(cd, second, "blue-0") == [
        ("BeforeBlockTraffic", "Succeeded"), ("BlockTraffic", "Succeeded"), ("AfterBlockTraffic", "Succeeded")]
    # KEEP_ALIVE: the original hosts stay registered, out of rotation, their apps still up.
    after = targets(server)
    assert [after[n]["serving"] for n in ("blue-0", "blue-1", "green-0", "green-1")] == [False, False, True, True]
    with socket.create_connection(("127.0.0.1", fleets["ports"]["blue-0"]), timeout=5):
        pass
    listed = cd.list_deployment_targets(deploymentId=second, targetFilters={"ServerInstanceLabel": ["Green"]})
    assert sorted(listed["targetIds"]) == FLEETS["green"]


def test_canary_sends_a_tenth_to_green_then_everything(server, fleets, tmp_path):
    cd = fleets["cd"]
    cd.create_deployment_config(deploymentConfigName="Canary10", minimumHealthyHosts={"type": "HOST_COUNT", "value": 0},
                                trafficRoutingConfig={"type": "TimeBasedCanary",
                                                      "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 1}})
    create_group(cd, "web", config="Canary10", action="TERMINATE")
    # v1 all at once (the deployment's own configuration); TERMINATE takes the green hosts, the
    # original fleet then, out of the target group: they are registered again for the canary.
    first, info = deploy(server, cd, "web", "blue", revision(tmp_path, "v1"), "v1.tgz",
                         deploymentConfigName="CodeDeployDefault.AllAtOnce")
    assert info["status"] == "Succeeded", (failures(cd, first), fleets["router"].tail())
    assert sorted(targets(server)) == FLEETS["blue"]
    for name in FLEETS["green"]:
        register(server, name, fleets["ports"][name])

    with Load(fleets["router"].url) as load:
        second = start(server, cd, "web", "green", revision(tmp_path, "v2"), "v2.tgz")
        # The canary step begins once green answers; measure 400 requests inside its minute.
        wait_for(lambda: any(r[2].startswith("v2 ") for r in load.results), timeout=120,
                 message="green to take its first request")
        begin = time.time() + 2
        window = wait_for(lambda: (lambda w: w if len(w) >= 400 else None)(
            [r for r in list(load.results) if r[0] >= begin][:400]), timeout=40, message="400 canary requests")
        assert window[-1][0] - begin < 50, "the 400 requests ran past the canary step"
        info = wait_for_status(cd, second, timeout=240)
        load.wait_for_answer("v2 ")
    assert info["status"] == "Succeeded", (failures(cd, second), fleets["router"].tail())
    share = 100 * sum(1 for r in window if r[2].startswith("v2 ")) / len(window)
    assert 7 <= share <= 13, f"green had {share:.1f} % of {len(window)} requests during the canary step"
    failed = [r for r in load.results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(load.results)} requests failed: {failed[:5]}"
    assert load.results[-1][2].startswith("v2 ")

    # TERMINATE: the blue hosts ran ApplicationStop (their app is down) and left the group.
    assert events(cd, second, "blue-1")[-1] == ("ApplicationStop", "Succeeded")
    after = targets(server)
    assert sorted(after) == FLEETS["green"]
    assert all("trafficWeight" not in target for target in after.values()), after
    for name in FLEETS["blue"]:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", fleets["ports"][name]), timeout=2).close()
    final = cd.get_deployment(deploymentId=second)["deploymentInfo"]
    assert final["instanceTerminationWaitTimeStarted"] is True


def test_green_failing_health_is_rolled_back_and_traffic_never_leaves_blue(server, fleets, tmp_path):
    cd = fleets["cd"]
    create_group(cd, "web", autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    first = serving_v1_on_blue(server, fleets, tmp_path, "web")

    with Load(fleets["router"].url) as load:
        broken, info = deploy(server, cd, "web", "green", revision(tmp_path, "v2", start=False), "v2.tgz")
        assert info["status"] == "Failed", (info["status"], fleets["router"].tail())
        rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
        rollback = wait_for_status(cd, rollback_id, timeout=120)
    assert rollback["status"] == "Succeeded", (failures(cd, rollback_id), fleets["router"].tail())
    allow = dict(events(cd, broken, "green-0"))
    assert allow["AllowTraffic"] == "Failed", events(cd, broken, "green-0")
    target = cd.get_deployment_target(deploymentId=broken, targetId="green-0")["deploymentTarget"]
    message = next(e for e in target["instanceTarget"]["lifecycleEvents"]
                   if e["lifecycleEventName"] == "AllowTraffic")["diagnostics"]["message"]
    assert "did not pass the health check of target group web" in message, message
    # Blue never blocked anything in the failed deployment.
    assert all(status == "Skipped" for _, status in events(cd, broken, "blue-0"))

    # The rollback: a new deployment, linked both ways, Blue allowed again and Green blocked.
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == broken
    assert [name for name, _ in events(cd, rollback_id, "blue-0")] == [
        "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert [name for name, _ in events(cd, rollback_id, "green-0")] == [
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    group = cd.get_deployment_group(applicationName="app", deploymentGroupName="web")["deploymentGroupInfo"]
    assert group["lastSuccessfulDeployment"]["deploymentId"] in (first, rollback_id)

    assert len(load.results) > 50
    failed = [r for r in load.results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(load.results)} requests failed: {failed[:5]}"
    assert {(r[2].split()[0], fleet_of(r[2])) for r in load.results} == {("v1", "blue")}
    assert [targets(server)[n]["serving"] for n in FLEETS["green"]] == [False, False]


def test_ready_and_termination_waits_end_with_continue_deployment(server, fleets, tmp_path):
    """STOP_DEPLOYMENT: installed, the deployment waits in Ready with its new hosts out of rotation
    until `aws deploy continue-deployment`; TERMINATE with an hour's wait: the original hosts stay
    until the termination wait is ended the same way."""
    cd = fleets["cd"]
    create_group(cd, "web", action="TERMINATE")
    cd.update_deployment_group(
        applicationName="app", currentDeploymentGroupName="web",
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 60},
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
        })
    deployment_id = start(server, cd, "web", "blue", revision(tmp_path, "v1"), "v1.tgz")
    info = wait_for_status(cd, deployment_id, statuses=("Ready", "Failed", "Stopped"), timeout=120)
    assert info["status"] == "Ready", failures(cd, deployment_id)
    assert info["deploymentOverview"]["Ready"] == 2
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="blue-0")["deploymentTarget"]
    assert target["instanceTarget"]["status"] == "Ready"
    assert [targets(server)[n]["serving"] for n in FLEETS["blue"]] == [False, False]
    refused = server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id,
                         "--deployment-wait-type", "TERMINATION_WAIT")
    assert not refused.ok and "InvalidDeploymentStatusException" in refused.stderr, refused.stderr

    continued = server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id,
                           "--deployment-wait-type", "READY_WAIT")
    assert continued.ok, continued.stderr
    info = wait_for(lambda: (lambda i: i if i.get("instanceTerminationWaitTimeStarted") else None)(
        cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]), timeout=120,
        message="the termination wait to start")
    assert info["status"] == "InProgress", failures(cd, deployment_id)
    assert {fleet_of(body) for body in answers(fleets["router"].url)} == {"blue"}
    # The original hosts (green here, never started) wait for their ApplicationStop.
    assert events(cd, deployment_id, "green-0")[-1] == ("ApplicationStop", "Pending")
    assert sorted(targets(server)) == sorted(FLEETS["blue"] + FLEETS["green"])

    ended = server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id,
                       "--deployment-wait-type", "TERMINATION_WAIT")
    assert ended.ok, ended.stderr
    info = wait_for_status(cd, deployment_id, timeout=60)
    assert info["status"] == "Succeeded", failures(cd, deployment_id)
    assert "Termination wait ended by ContinueDeployment" in info["deploymentStatusMessages"]
    assert events(cd, deployment_id, "green-0")[-1] == ("ApplicationStop", "Succeeded")
    assert sorted(targets(server)) == FLEETS["blue"]
