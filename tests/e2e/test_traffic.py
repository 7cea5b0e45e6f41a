"""Traffic control: an in-place deployment WITH_TRAFFIC_CONTROL over four real hosts, each running
a small HTTP app that says its version, behind `landfall router` (its built-in proxy, or a real
HAProxy it drives), while a load generator sends requests the whole time."""

import subprocess
import time
import urllib.request

import pytest

from hostsim import wait_for_status
from routers import SERVICE_ROLE, Load, Router, create_target_group, failures, revision, stop_apps, upload
from sources import free_port


@pytest.fixture
def server(landfall_factory):
    """A server that gives up on a host's health checks after 8 s (the default is 300 s)."""
    return landfall_factory(start=False).start("--traffic-timeout", "8")


@pytest.fixture(params=["builtin", "haproxy"])
def traffic(request, server, hosts, tmp_path):
    """Four hosts in group app/web (in-place, with traffic control, one at a time), each a
    target of target group `web`, served by `landfall router`: its built-in proxy, or a real
    HAProxy it drives."""
    names = [f"web-{i}" for i in range(4)]
    ports = {}
    for name in names:
        ports[name] = free_port()
        hosts(name, start=False, role="web").start(
            TEST_HOST=name, APP_PORT=str(ports[name]), APP_DIR=str(tmp_path / "apps" / name))
    create_target_group(server, router=request.param)
    for name in names:
        registered = server.landfall("target-group", "register", "web", name, f"127.0.0.1:{ports[name]}")
        assert registered.ok, registered.stderr
    router = Router(server, request.param, tmp_path)
    cd = server.client()
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="web", serviceRoleArn=SERVICE_ROLE,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    assert server.aws("s3", "mb", "s3://bundles").ok
    yield {"names": names, "url": router.url, "cd": cd, "log": router.log, "kind": request.param,
           "restart_haproxy": router.restart_haproxy}
    router.close()
    stop_apps(tmp_path, names)


def deploy(server, cd, path, key):
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="web",
                                         revision=upload(server, path, key))["deploymentId"]
    return deployment_id, wait_for_status(cd, deployment_id, timeout=180)


def test_in_place_behind_the_router_drops_no_request(server, traffic, tmp_path):
    cd = traffic["cd"]
    # v1 everywhere: no app ran before, so every host enters rotation only once it answers.
    first, info = deploy(server, cd, revision(tmp_path, "v1"), "v1.tgz")
    assert info["status"] == "Succeeded", (failures(cd, first), traffic["log"].read_text()[-3000:])
    target = cd.get_deployment_target(deploymentId=first, targetId="web-0")["deploymentTarget"]["instanceTarget"]
    events = [e["lifecycleEventName"] for e in target["lifecycleEvents"]]
    assert events[:3] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert events[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    allow = target["lifecycleEvents"][-2]
    assert allow["status"] == "Succeeded" and "healthy in target groups web" in allow["diagnostics"]["message"]
    with urllib.request.urlopen(traffic["url"], timeout=5) as response:
        assert response.read().decode().startswith("v1 ")
    if traffic["kind"] == "builtin":
        # HTTP/2 (cleartext, prior knowledge) is served too.
        h2 = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_version}", traffic["url"]],
                            capture_output=True, text=True, timeout=10)
        assert h2.stdout.startswith("v1 ") and h2.stdout.endswith("\n2"), (h2.stdout, h2.stderr)

    # v2 one host at a time, under load the whole time.
    with Load(traffic["url"]) as load:
        load.wait_until_running()
        second, info = deploy(server, cd, revision(tmp_path, "v2"), "v2.tgz")
        load.wait_for_hosts("v2 ", traffic["names"])
    assert info["status"] == "Succeeded", info
    failed = [r for r in load.results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(load.results)} requests failed: {failed[:5]}"
    assert len(load.results) > 50, "the load ran through the deployment"
    # Each host switched once, from v1 to v2, in the deployment's order.
    first_v2 = {}
    for when, _, body in load.results:
        version, host = body.split()
        if version == "v2":
            first_v2.setdefault(host, when)
        else:
            assert host not in first_v2, f"{host} answered v1 after v2"
    assert sorted(first_v2, key=first_v2.get) == traffic["names"]
    assert load.results[-1][2].startswith("v2 ")

    if traffic["kind"] == "haproxy":
        # HAProxy restarted (dynamic servers are lost): the router puts every server back, and
        # each takes traffic again once its checks pass.
        traffic["restart_haproxy"]()
        deadline = time.time() + 20
        seen = set()
        while len(seen) < 4:
            assert time.time() < deadline, f"only {seen} answered after HAProxy restarted"
            try:
                with urllib.request.urlopen(traffic["url"], timeout=5) as response:
                    seen.add(response.read().decode().split()[1])
            except OSError:
                time.sleep(0.2)

    # A release whose app never starts: AllowTraffic fails on the first host with the health
    # check's reason, the deployment fails, and the other hosts keep serving v2.
    with Load(traffic["url"]) as load:
        broken, info = deploy(server, cd, revision(tmp_path, "v3", start=False), "v3.tgz")
    assert info["status"] == "Failed", (info["status"], traffic["log"].read_text()[-4000:])
    target = cd.get_deployment_target(deploymentId=broken, targetId="web-0")["deploymentTarget"]["instanceTarget"]
    allow = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
    assert allow["status"] == "Failed"
    message = allow["diagnostics"]["message"]
    assert "web-0" in message and "did not pass the health check of target group web" in message, message
    assert "GET /health" in message and "unhealthy" in message, message
    assert not [r for r in load.results if r[1] != 200], "the failed host had been drained first"


def test_target_group_commands_and_errors(server, tmp_path):
    listed = server.landfall("target-group", "list", "--output", "json")
    assert listed.ok and listed.json == []
    bad = server.landfall("target-group", "create", "web", "--health-path", "health")
    assert bad.returncode == 2 and "must start with '/'" in bad.stderr, bad.stderr
    assert server.landfall("target-group", "create", "web").ok
    again = server.landfall("target-group", "create", "web")
    assert again.returncode == 1 and "TargetGroupAlreadyExistsException" in again.stderr
    unknown = server.landfall("target-group", "register", "web", "nobody", "127.0.0.1:9")
    assert unknown.returncode == 2 and "InstanceNotRegisteredException" in unknown.stderr, unknown.stderr
    # A deployer key reads target groups but does not change them; a router key does neither.
    deployer = server.landfall("keys", "create", "--role", "deployer", "--output", "json").json["accessKey"]
    env = {"AWS_ACCESS_KEY_ID": deployer["accessKeyId"], "AWS_SECRET_ACCESS_KEY": deployer["secretAccessKey"],
           "AWS_PROFILE": ""}
    assert server.landfall("target-group", "list", env=env).ok
    denied = server.landfall("target-group", "delete", "web", env=env)
    assert denied.returncode == 1 and "AccessDeniedException" in denied.stderr, denied.stderr
    # The group says which kind of router serves it.
    mismatch = server.landfall("router", "--target-group", "web", "--haproxy-socket", str(tmp_path / "none.sock"),
                               "--haproxy-backend", "web")
    assert mismatch.returncode == 1 and "is served by a builtin router, not haproxy" in mismatch.stderr, mismatch.stderr
    assert server.landfall("target-group", "delete", "web").ok
    gone = server.landfall("target-group", "delete", "web")
    assert "TargetGroupDoesNotExistException" in gone.stderr
