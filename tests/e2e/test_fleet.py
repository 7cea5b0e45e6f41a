"""Elastic fleets: a host that joins a deployment group (registered with the group's tags) gets
the group's current revision through a launch deployment (creator `autoscaling`) once its agent
polls, with nobody deploying it; real agents run the hooks."""

import signal
import time
import urllib.request

from hostsim import wait_for, wait_for_status
from monitoring import deploy, revision, setup_group
from realhost import bundle
from routers import SERVICE_ROLE, Router, create_target_group, failures, stop_apps, upload
from routers import revision as app_revision
from sources import free_port

INSTALL_EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                  "ApplicationStart", "ValidateService"]


def content(out, host):
    path = out / host
    return path.read_text().strip() if path.exists() else None


def start_hosts(hosts, tmp_path, names):
    """Real hosts with the group's tags, writing to the returned directory."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for name in names:
        hosts(name, start=False).start(TEST_HOST=name, OUT_DIR=str(out))
    return out


def deployments(cd):
    return cd.list_deployments(applicationName="shop", deploymentGroupName="web")["deployments"]


def test_a_host_that_joins_gets_the_current_revision(server, cd, hosts, tmp_path):
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2"])
    setup_group(server)
    for version in ["v1", "v2"]:
        deployment_id = deploy(server, revision(tmp_path, version))
        assert wait_for_status(cd, deployment_id)["status"] == "Succeeded"
    user_deployments = set(deployments(cd))

    # Registered with the group's tags but its agent not started: nothing yet.
    joining = hosts("web-3", start=False)
    server.fleet_settled()
    assert set(deployments(cd)) == user_deployments
    # Its agent polls: it gets v2, with no one deploying.
    joining.start(TEST_HOST="web-3", OUT_DIR=str(out))
    wait_for(lambda: content(out, "web-3") == "v2", timeout=60, message="web-3 to get v2")
    (launch_id,) = set(deployments(cd)) - user_deployments
    info = wait_for_status(cd, launch_id)
    assert (info["status"], info["creator"]) == ("Succeeded", "autoscaling"), info
    assert info["revision"]["s3Location"]["key"].startswith("v2-"), info["revision"]
    targets = cd.list_deployment_targets(deploymentId=launch_id)["targetIds"]
    assert targets == ["web-3"]
    target = cd.get_deployment_target(deploymentId=launch_id, targetId="web-3")["deploymentTarget"]["instanceTarget"]
    assert [(e["lifecycleEventName"], e["status"]) for e in target["lifecycleEvents"]] == [
        (event, "Succeeded") for event in INSTALL_EVENTS]
    assert [content(out, h) for h in ["web-1", "web-2"]] == ["v2", "v2"]

    # Once deployed to, a host is not new any more; a host the group does not select gets nothing.
    hosts("db-1", start=False, role="db").start(TEST_HOST="db-1", OUT_DIR=str(out))
    server.agent_polled("db-1")
    server.fleet_settled()
    assert set(deployments(cd)) == user_deployments | {launch_id}
    assert content(out, "db-1") is None

    # The next user deployment takes all three.
    third = deploy(server, revision(tmp_path, "v3"))
    assert wait_for_status(cd, third)["status"] == "Succeeded"
    assert sorted(cd.list_deployment_targets(deploymentId=third)["targetIds"]) == ["web-1", "web-2", "web-3"]


def test_a_host_added_to_a_pool_gets_the_revision_and_one_taken_out_is_left_out(server, cd, hosts, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # Tagged for no group: only the pool selects these hosts.
    for name in ["app-1", "app-2"]:
        hosts(name, start=False, role="spare").start(TEST_HOST=name, OUT_DIR=str(out))
    created = server.landfall("pool", "create", "web-pool", "app-1", "app-2")
    assert created.ok, created.stderr
    setup_group(server, tag="nobody", extra=("--auto-scaling-groups", "web-pool"))
    [asg] = cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")["deploymentGroupInfo"][
        "autoScalingGroups"]
    assert asg["name"] == "web-pool" and asg["hook"].startswith("CodeDeploy-managed-automatic-launch-deployment-hook-web-")
    first = deploy(server, revision(tmp_path, "v1"))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    assert sorted(cd.list_deployment_targets(deploymentId=first)["targetIds"]) == ["app-1", "app-2"]

    # A registered host added to the pool: nothing until its agent polls, then v1 by a launch.
    joining = hosts("app-3", start=False, role="spare")
    added = server.landfall("pool", "add", "web-pool", "app-3")
    assert added.ok, added.stderr
    server.fleet_settled()
    assert deployments(cd) == [first]
    joining.start(TEST_HOST="app-3", OUT_DIR=str(out))
    wait_for(lambda: content(out, "app-3") == "v1", timeout=60, message="app-3 to get v1")
    (launch_id,) = set(deployments(cd)) - {first}
    info = wait_for_status(cd, launch_id)
    assert (info["status"], info["creator"]) == ("Succeeded", "autoscaling"), info
    assert cd.list_deployment_targets(deploymentId=launch_id)["targetIds"] == ["app-3"]

    # Taken out of the pool, a host is left out of the next deployment and keeps what it has.
    removed = server.landfall("pool", "remove", "web-pool", "app-1")
    assert removed.ok, removed.stderr
    second = deploy(server, revision(tmp_path, "v2"))
    assert wait_for_status(cd, second)["status"] == "Succeeded"
    assert sorted(cd.list_deployment_targets(deploymentId=second)["targetIds"]) == ["app-2", "app-3"]
    assert [content(out, h) for h in ["app-1", "app-2", "app-3"]] == ["v1", "v2", "v2"]

    # A pool member that leaves runs its termination deployment (the pool selects it) and leaves
    # the pool with its registration.
    drained = server.landfall("instance", "drain", "app-3", "--wait")
    assert drained.ok, drained.stderr
    assert termination_of(cd, "app-3")["status"] == "Succeeded"
    listed = server.landfall("pool", "list", "web-pool", "--output", "json")
    assert listed.json[0]["instanceNames"] == ["app-2"]


def test_a_group_with_nothing_deployed_yet_gives_a_new_host_nothing(server, cd, hosts, tmp_path):
    setup_group(server)
    start_hosts(hosts, tmp_path, ["web-1"])
    server.agent_polled("web-1")
    server.fleet_settled()
    assert deployments(cd) == []


def join_during_a_slow_deployment(server, cd, hosts, tmp_path, joining):
    """web-1 and web-2 on v2; v3 deployed slowly while `joining` hosts register and start.
    Returns v3's deployment id once it has succeeded, and where the hosts write."""
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2"])
    deployment_id = deploy(server, revision(tmp_path, "v2"))
    assert wait_for_status(cd, deployment_id)["status"] == "Succeeded"
    third = deploy(server, revision(tmp_path, "v3", slow_seconds=6))
    wait_for(lambda: cd.get_deployment(deploymentId=third)["deploymentInfo"]["status"] == "InProgress",
             message="v3 to start")
    start_hosts(hosts, tmp_path, joining)
    # They get the group's revision of the moment, v2, while v3 still runs.
    wait_for(lambda: all(content(out, name) == "v2" for name in joining), timeout=60, message="the launches")
    assert cd.get_deployment(deploymentId=third)["deploymentInfo"]["status"] == "InProgress"
    assert sorted(cd.list_deployment_targets(deploymentId=third)["targetIds"]) == ["web-1", "web-2"]
    assert wait_for_status(cd, third, timeout=120)["status"] == "Succeeded"
    return third, out


def test_hosts_that_join_during_a_deployment_get_its_revision_by_a_follow_up(server, cd, hosts, tmp_path):
    setup_group(server)
    third, out = join_during_a_slow_deployment(server, cd, hosts, tmp_path, ["web-3", "web-4"])
    wait_for(lambda: [content(out, h) for h in ["web-3", "web-4"]] == ["v3", "v3"], timeout=60,
             message="the follow-up deployment")
    root = cd.get_deployment(deploymentId=third)["deploymentInfo"]
    (follow_up_id,) = root["relatedDeployments"]["autoUpdateOutdatedInstancesDeploymentIds"]
    follow_up = wait_for_status(cd, follow_up_id)
    assert (follow_up["status"], follow_up["creator"]) == ("Succeeded", "CodeDeployAutoUpdate"), follow_up
    assert follow_up["relatedDeployments"]["autoUpdateOutdatedInstancesRootDeploymentId"] == third
    assert follow_up["revision"] == root["revision"]
    assert sorted(cd.list_deployment_targets(deploymentId=follow_up_id)["targetIds"]) == ["web-3", "web-4"]
    assert [content(out, h) for h in ["web-1", "web-2"]] == ["v3", "v3"]
    events = server.landfall("events", third, "--output", "json")
    assert events.ok, events.stderr
    noted = [e for e in events.json if e["type"] == "OutdatedInstances"]
    assert [(e["instanceIds"], e["relatedDeploymentId"]) for e in noted] == [(["web-3", "web-4"], follow_up_id)]
    # Nothing more to do: v2, v3, the two launches and the follow-up, and no more.
    server.fleet_settled()
    assert len(deployments(cd)) == 5


def test_with_ignore_the_hosts_stay_behind_and_the_deployment_says_so(server, cd, hosts, tmp_path):
    setup_group(server, extra=("--outdated-instances-strategy", "IGNORE"))
    third, out = join_during_a_slow_deployment(server, cd, hosts, tmp_path, ["web-3"])

    def noted():
        events = server.landfall("events", third, "--output", "json").json
        return [e for e in events if e["type"] == "OutdatedInstances"]
    (note,) = wait_for(noted, timeout=30, message="the note on the deployment")
    assert note["instanceIds"] == ["web-3"] and "IGNORE" in note["message"], note
    server.fleet_settled()
    assert content(out, "web-3") == "v2"
    assert all(cd.get_deployment(deploymentId=d)["deploymentInfo"]["creator"] != "CodeDeployAutoUpdate"
               for d in deployments(cd))
    assert len(noted()) == 1


TERMINATION_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop"]


def stoppable_revision(workdir, version, stop_seconds=0, start_seconds=0):
    """A bundle writing `version` to $OUT_DIR/$TEST_HOST at ApplicationStart (after
    `start_seconds`); its ApplicationStop (run when the host leaves, or before the next revision)
    takes `stop_seconds` and appends `stopped VERSION` to $OUT_DIR/$TEST_HOST.stop."""
    start = f"#!/bin/sh\nsleep {start_seconds}\necho {version} > \"$OUT_DIR/$TEST_HOST\"\n"
    stop = f"#!/bin/sh\nsleep {stop_seconds}\necho stopped {version} >> \"$OUT_DIR/$TEST_HOST.stop\"\n"
    appspec = ("version: 0.0\nos: linux\nhooks:\n"
               "  ApplicationStop:\n    - location: stop.sh\n      timeout: 120\n"
               "  ApplicationStart:\n    - location: start.sh\n      timeout: 120\n")
    return bundle(workdir / f"{version}-{time.monotonic_ns()}.tgz",
                  {"appspec.yml": (appspec, 0o644), "start.sh": (start, 0o755), "stop.sh": (stop, 0o755)})


def registered(server, name):
    got = server.aws("deploy", "get-on-premises-instance", "--instance-name", name)
    assert got.ok, got.stderr
    return "deregisterTime" not in got.json["instanceInfo"]


def termination_of(cd, host):
    for deployment_id in deployments(cd):
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["creator"] == "autoscalingTermination" and \
                cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"] == [host]:
            return info
    return None


def test_a_drained_host_runs_application_stop_and_leaves_the_group(server, cd, hosts, tmp_path):
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2"])
    setup_group(server)
    first = deploy(server, stoppable_revision(tmp_path, "v1"))
    assert wait_for_status(cd, first)["status"] == "Succeeded"

    drained = server.landfall("instance", "drain", "web-2", "--wait")
    assert drained.ok, drained.stderr
    assert "has left" in drained.stdout
    assert (out / "web-2.stop").read_text() == "stopped v1\n"
    assert not (out / "web-1.stop").exists()
    assert not registered(server, "web-2") and registered(server, "web-1")
    info = termination_of(cd, "web-2")
    assert info["status"] == "Succeeded" and info["deploymentId"] in drained.stdout, info
    target = cd.get_deployment_target(deploymentId=info["deploymentId"], targetId="web-2")["deploymentTarget"]
    assert [(e["lifecycleEventName"], e["status"]) for e in target["instanceTarget"]["lifecycleEvents"]] == [
        (event, "Succeeded") for event in TERMINATION_EVENTS]

    # The next deployment does not target it.
    second = deploy(server, stoppable_revision(tmp_path, "v2"))
    assert wait_for_status(cd, second)["status"] == "Succeeded"
    assert cd.list_deployment_targets(deploymentId=second)["targetIds"] == ["web-1"]
    assert content(out, "web-2") == "v1"


def test_a_host_drained_during_a_deployment_leaves_after_it_even_across_a_crash(server, cd, hosts, tmp_path):
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2"])
    setup_group(server)
    first = deploy(server, stoppable_revision(tmp_path, "v1"))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    # One host at a time, web-1 first: web-2's turn is still to come when it is drained.
    second = deploy(server, stoppable_revision(tmp_path, "v2", start_seconds=3))
    status, answer = server.raw("Landfall_20261122.DrainInstance", {"instanceName": "web-2"})
    assert status == 200, answer
    assert answer == {"deploymentIds": [], "waitingForDeploymentIds": [second], "left": False}
    # The departure is kept: a crash does not forget it.
    server.restart(signal.SIGKILL)
    info = wait_for_status(cd, second, timeout=120)
    assert info["status"] == "Succeeded" and info["deploymentOverview"]["Succeeded"] == 2, info
    wait_for(lambda: not registered(server, "web-2"), timeout=60, message="web-2 to leave")
    # Its termination deployment came after v2 was done with it, and stopped v2.
    termination = termination_of(cd, "web-2")
    assert termination["status"] == "Succeeded", termination
    assert termination["createTime"] >= info["completeTime"]
    assert (out / "web-2.stop").read_text() == "stopped v1\nstopped v2\n"
    assert (out / "web-1.stop").read_text() == "stopped v1\n"
    assert registered(server, "web-1")


def test_deregistration_waits_for_the_termination_deployment_when_the_group_asks(server, cd, hosts, tmp_path):
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2"])
    setup_group(server, extra=("--termination-hook-enabled",))
    first = deploy(server, stoppable_revision(tmp_path, "v1", stop_seconds=2))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    gone = server.aws("deploy", "deregister-on-premises-instance", "--instance-name", "web-1")
    assert gone.ok, gone.stderr
    # Still registered while its ApplicationStop runs, then gone.
    assert registered(server, "web-1")
    wait_for(lambda: not registered(server, "web-1"), timeout=30, message="web-1 to leave")
    assert (out / "web-1.stop").read_text() == "stopped v1\n"
    assert termination_of(cd, "web-1")["status"] == "Succeeded"


def test_a_termination_deployment_that_runs_too_long_lets_the_host_go(landfall_factory, hosts_of, tmp_path):
    server = landfall_factory(start=False)
    server.start("--termination-timeout", "3")
    cd = server.client()
    out = tmp_path / "out"
    out.mkdir()
    hosts_of(server, "web-1").start(TEST_HOST="web-1", OUT_DIR=str(out))
    setup_group(server)
    first = deploy(server, stoppable_revision(tmp_path, "v1", stop_seconds=15))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    assert server.landfall("instance", "drain", "web-1").ok
    wait_for(lambda: not registered(server, "web-1"), timeout=30, message="web-1 to leave")
    # It left while its ApplicationStop still ran.
    assert not (out / "web-1.stop").exists()
    info = wait_for_status(cd, termination_of(cd, "web-1")["deploymentId"])
    assert (info["status"], info["errorInformation"]["code"]) == ("Stopped", "TIMEOUT"), info
    assert "--termination-timeout" in info["errorInformation"]["message"]


def serving(server, host):
    """Whether `host` is in rotation in target group `web` (None: not a target)."""
    status, body = server.raw("Landfall_20261122.ListTargetGroups", {})
    assert status == 200, body
    (group,) = [g for g in body["targetGroups"] if g["name"] == "web"]
    return next((t["serving"] for t in group["targets"] if t["instanceName"] == host), None)


def test_a_joining_host_enters_its_target_group_only_at_allow_traffic(server, cd, hosts, tmp_path):
    ports = {name: free_port() for name in ["web-0", "web-1", "web-2"]}

    def start(name):
        hosts(name, start=False, role="web").start(
            TEST_HOST=name, APP_PORT=str(ports[name]), APP_DIR=str(tmp_path / "apps" / name))

    for name in ["web-0", "web-1"]:
        start(name)
    create_target_group(server)
    for name in ["web-0", "web-1"]:
        assert server.landfall("target-group", "register", "web", name, f"127.0.0.1:{ports[name]}").ok
    router = Router(server, "builtin", tmp_path)
    try:
        cd.create_application(applicationName="app")
        cd.create_deployment_group(
            applicationName="app", deploymentGroupName="web", serviceRoleArn=SERVICE_ROLE,
            deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
            onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}])
        assert server.aws("s3", "mb", "s3://bundles").ok
        first = cd.create_deployment(applicationName="app", deploymentGroupName="web",
                                     revision=upload(server, app_revision(tmp_path, "v1"), "v1.tgz"))["deploymentId"]
        assert wait_for_status(cd, first, timeout=120)["status"] == "Succeeded", failures(cd, first)

        # web-2 joins: registered as a target of `web` first (not on standby), then its agent starts.
        joining = hosts("web-2", start=False, role="web")
        assert server.landfall("target-group", "register", "web", "web-2", f"127.0.0.1:{ports['web-2']}").ok
        assert serving(server, "web-2") is False
        joining.start(TEST_HOST="web-2", APP_PORT=str(ports["web-2"]), APP_DIR=str(tmp_path / "apps" / "web-2"))
        launch = wait_for(lambda: next((d for d in cd.list_deployments(applicationName="app",
                                                                        deploymentGroupName="web")["deployments"]
                                        if d != first), None), timeout=30, message="the launch deployment")
        seen = []
        while True:
            # Rotation first, then the events: a host seen in rotation must by then show its
            # AllowTraffic begun (read the other way round, AllowTraffic could begin in between).
            in_rotation = serving(server, "web-2")
            info = cd.get_deployment(deploymentId=launch)["deploymentInfo"]
            target = cd.get_deployment_target(deploymentId=launch, targetId="web-2")["deploymentTarget"]
            events = {e["lifecycleEventName"]: e["status"] for e in target["instanceTarget"]["lifecycleEvents"]}
            seen.append((events["AllowTraffic"], in_rotation))
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                break
            time.sleep(0.1)
        assert info["status"] == "Succeeded", failures(cd, launch)
        assert info["creator"] == "autoscaling"
        assert list(events) == INSTALL_EVENTS + ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        # Out of rotation until AllowTraffic began, in rotation after.
        assert not [s for s in seen if s == ("Pending", True)], seen
        assert serving(server, "web-2") is True
        answered = set()
        wait_for(lambda: answered.add(urllib.request.urlopen(router.url, timeout=5).read().decode().split()[1])
                 or "web-2" in answered, timeout=30, message="web-2 to answer through the router")
    finally:
        router.close()
        stop_apps(tmp_path, ["web-0", "web-1", "web-2"])


def test_hosts_a_failed_deployment_left_behind_are_not_updated_by_themselves(server, cd, hosts, tmp_path):
    out = start_hosts(hosts, tmp_path, ["web-1", "web-2", "web-3"])
    setup_group(server)
    first = deploy(server, stoppable_revision(tmp_path, "v1"))
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    # v2 fails on web-2 after web-1 took it (one at a time, by name), so web-3 never gets it.
    start = "#!/bin/sh\n[ \"$TEST_HOST\" = web-2 ] && exit 1\necho v2 > \"$OUT_DIR/$TEST_HOST\"\n"
    appspec = "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"
    broken = bundle(tmp_path / "v2-broken.tgz", {"appspec.yml": (appspec, 0o644), "start.sh": (start, 0o755)})
    second = deploy(server, broken)
    assert wait_for_status(cd, second)["status"] == "Failed"
    assert [content(out, h) for h in ["web-1", "web-2", "web-3"]] == ["v2", "v1", "v1"]
    # web-1 is ahead of the group's revision (v1), not a host that joined late: nothing follows.
    server.fleet_settled()
    assert sorted(deployments(cd)) == sorted([first, second])
