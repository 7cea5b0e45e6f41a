"""Deployments run by the engine, end to end over the agent protocol: simulated hosts (real
protocol, no scripts) against a real server. The host agent's own behaviour is tested in
test_agent.py and test_deploy.py."""

import json
import signal
import subprocess
import threading

import pytest

from conftest import refusal
from hostsim import SimHost, wait_for, wait_for_status

ROLE = "arn:aws:iam::123456789012:role/cd"
IN_PLACE = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
            "ValidateService"]


def revision(key="app/v1.tgz"):
    return {"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": key, "bundleType": "tgz"}}


def fleet(server, cd, count, group="fleet", app="web", config=None, **group_settings):
    """`count` simulated hosts tagged for one deployment group, polling."""
    hosts = [SimHost(server, f"{group}-{i}", tags=[("fleet", group)]) for i in range(count)]
    if app not in cd.list_applications()["applications"]:
        cd.create_application(applicationName=app)
    settings = {"deploymentConfigName": config} if config else {}
    cd.create_deployment_group(
        applicationName=app, deploymentGroupName=group, serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": group, "Type": "KEY_AND_VALUE"}],
        **settings, **group_settings,
    )
    return hosts


def deploy(cd, group="fleet", app="web", key="app/v1.tgz", **extra):
    return cd.create_deployment(applicationName=app, deploymentGroupName=group, revision=revision(key), **extra)["deploymentId"]


def targets(cd, deployment_id):
    ids = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    found = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)["deploymentTargets"]
    return {t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found}


def host_windows(cd, deployment_id):
    """Per host that started: (first event start, last event end), as the server recorded them."""
    windows = {}
    for name, target in targets(cd, deployment_id).items():
        events = [e for e in target["lifecycleEvents"] if e.get("startTime")]
        if events:
            windows[name] = (min(e["startTime"] for e in events), max(e.get("endTime", e["startTime"]) for e in events))
    return windows


def most_at_once(windows):
    points = sorted([(start, 1) for start, _ in windows.values()] + [(end, -1) for _, end in windows.values()],
                    key=lambda p: (p[0], p[1]))
    current = peak = 0
    for _, change in points:
        current += change
        peak = max(peak, current)
    return peak


def stop_all(hosts):
    for host in hosts:
        host.stop()


def test_five_hosts_deploy_one_at_a_time(server, cd):
    hosts = fleet(server, cd, 5)
    for host in hosts:
        host.start()
    deployment_id = deploy(cd)
    info = wait_for_status(cd, deployment_id)
    stop_all(hosts)
    assert info["status"] == "Succeeded", info
    assert info["deploymentOverview"] == {"Pending": 0, "InProgress": 0, "Succeeded": 5, "Failed": 0, "Skipped": 0, "Ready": 0}
    assert info["startTime"] >= info["createTime"] and info["completeTime"] >= info["startTime"]
    for host in hosts:
        assert [event for _, event, _ in host.log] == IN_PLACE, host.name
    for target in targets(cd, deployment_id).values():
        assert target["status"] == "Succeeded"
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == IN_PLACE
        for event in target["lifecycleEvents"]:
            assert event["status"] == "Succeeded"
            assert event["diagnostics"] == {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}
            assert event["startTime"] <= event["endTime"]
    # OneAtATime: never two hosts at once, taken in name order (all new).
    windows = host_windows(cd, deployment_id)
    assert most_at_once(windows) == 1
    assert sorted(windows, key=lambda name: windows[name][0]) == [f"fleet-{i}" for i in range(5)]
    group = cd.get_deployment_group(applicationName="web", deploymentGroupName="fleet")["deploymentGroupInfo"]
    assert group["lastSuccessfulDeployment"]["deploymentId"] == deployment_id
    assert group["lastAttemptedDeployment"]["status"] == "Succeeded"
    assert group["targetRevision"] == revision()
    deployed = cd.list_application_revisions(applicationName="web", deployed="include")["revisions"]
    assert deployed == [revision()]


@pytest.mark.parametrize(
    "config, failing_host, expected",
    [
        # OneAtATime: a failure on any host but the last fails the deployment; later hosts are skipped.
        ("CodeDeployDefault.OneAtATime", 2, ("Failed", {"Succeeded": 2, "Failed": 1, "Skipped": 2})),
        ("CodeDeployDefault.OneAtATime", 4, ("Succeeded", {"Succeeded": 4, "Failed": 1, "Skipped": 0})),
        # HalfAtATime on 5: at least 3 must stay healthy, 2 may be offline: one failure is fine.
        ("CodeDeployDefault.HalfAtATime", 0, ("Succeeded", {"Succeeded": 4, "Failed": 1, "Skipped": 0})),
        # 75 % of 5 rounds up to 4 healthy: one host offline at a time, and no failure but the last.
        ("SeventyFive", 1, ("Failed", {"Succeeded": 1, "Failed": 1, "Skipped": 3})),
    ],
)
def test_one_host_failing_validate_service(server, cd, config, failing_host, expected):
    if config == "SeventyFive":
        cd.create_deployment_config(deploymentConfigName="SeventyFive", minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75})
    hosts = fleet(server, cd, 5, config=config)
    hosts[failing_host].outcomes["ValidateService"] = "fail"
    for host in hosts:
        host.start()
    deployment_id = deploy(cd)
    info = wait_for_status(cd, deployment_id)
    stop_all(hosts)
    status, counts = expected
    assert info["status"] == status, info
    for name, count in counts.items():
        assert info["deploymentOverview"][name] == count, (name, info["deploymentOverview"])
    failed = targets(cd, deployment_id)[f"fleet-{failing_host}"]
    assert failed["status"] == "Failed"
    events = {e["lifecycleEventName"]: e for e in failed["lifecycleEvents"]}
    assert events["ValidateService"]["status"] == "Failed"
    assert events["ValidateService"]["diagnostics"]["errorCode"] == "ScriptFailed"
    assert events["ValidateService"]["diagnostics"]["scriptName"] == "scripts/ValidateService.sh"
    assert "failed on fleet-" in events["ValidateService"]["diagnostics"]["logTail"]
    if status == "Failed":
        assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
        skipped = [t for t in targets(cd, deployment_id).values() if t["status"] == "Skipped"]
        assert all(e["status"] == "Skipped" for t in skipped for e in t["lifecycleEvents"])
        assert all(not [event for _, event, _ in h.log] for h in hosts if h.name in {t["targetId"] for t in skipped})


def test_hosts_in_flight_never_exceed_the_minimum_healthy_budget(server, cd):
    cd.create_deployment_config(deploymentConfigName="KeepFour", minimumHealthyHosts={"type": "HOST_COUNT", "value": 4})
    hosts = fleet(server, cd, 6, config="KeepFour")
    for host in hosts:
        host.delay = 0.02
        host.start()
    deployment_id = deploy(cd)
    info = wait_for_status(cd, deployment_id)
    stop_all(hosts)
    assert info["status"] == "Succeeded"
    windows = host_windows(cd, deployment_id)
    assert len(windows) == 6
    # 6 hosts, 4 must stay healthy: at most 2 at once, and the budget is used.
    assert most_at_once(windows) == 2


def test_failure_rolls_back_to_the_last_successful_revision(server, cd):
    hosts = fleet(server, cd, 2, config="CodeDeployDefault.AllAtOnce",
                  autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    for host in hosts:
        host.start()
    first = deploy(cd, key="app/v1.tgz")
    assert wait_for_status(cd, first)["status"] == "Succeeded"
    # v2 fails everywhere (AllAtOnce needs one success); v1 still installs fine.
    def fail_only_v2(host):
        def outcome(command):
            status, spec = host.call("GetDeploymentSpecification",
                                     {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": host.arn})
            payload = spec["DeploymentSpecification"]["GenericEnvelope"]["Payload"]
            return "fail" if "v2.tgz" in open_envelope(payload) else "succeed"
        return outcome

    for host in hosts:
        host.outcomes["ValidateService"] = fail_only_v2(host)
    second = deploy(cd, key="app/v2.tgz")
    failed = wait_for_status(cd, second)
    assert failed["status"] == "Failed"
    rollback_id = wait_for(lambda: cd.get_deployment(deploymentId=second)["deploymentInfo"].get("rollbackInfo", {}).get("rollbackDeploymentId"),
                           message="the rollback deployment")
    rollback = wait_for_status(cd, rollback_id)
    stop_all(hosts)
    assert rollback["status"] == "Succeeded"
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"] == revision("app/v1.tgz")
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == second
    assert set(targets(cd, rollback_id)) == {"fleet-0", "fleet-1"}
    group = cd.get_deployment_group(applicationName="web", deploymentGroupName="fleet")["deploymentGroupInfo"]
    assert group["targetRevision"] == revision("app/v1.tgz")
    assert group["lastSuccessfulDeployment"]["deploymentId"] == rollback_id


def open_envelope(payload):
    """The specification JSON inside a PKCS7/JSON envelope, read with openssl."""
    result = subprocess.run(["openssl", "smime", "-verify", "-noverify", "-inform", "PEM"],
                            input=payload.encode(), capture_output=True, check=True)
    return result.stdout.decode()


def test_failure_without_a_previous_success_says_why_it_does_not_roll_back(server, cd):
    hosts = fleet(server, cd, 1, autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    hosts[0].outcomes["Install"] = "fail"
    hosts[0].start()
    deployment_id = deploy(cd)
    info = wait_for_status(cd, deployment_id)
    hosts[0].stop()
    assert info["status"] == "Failed"
    assert "no successful deployment" in info["rollbackInfo"]["rollbackMessage"]
    assert "rollbackDeploymentId" not in info["rollbackInfo"]


def test_stop_lets_the_running_event_finish_and_skips_the_rest(server, cd):
    hosts = fleet(server, cd, 3)
    gate = threading.Event()
    running = threading.Event()

    def before_install(command):
        # Acknowledged and running: the stop must find it in flight.
        running.set()
        return "succeed" if gate.wait(20) else "fail"

    hosts[0].outcomes["BeforeInstall"] = before_install
    for host in hosts:
        host.start()
    deployment_id = deploy(cd)
    wait_for(running.is_set, message="host 0 to be running BeforeInstall")
    answer = cd.stop_deployment(deploymentId=deployment_id)
    assert answer["status"] == "Pending"
    assert cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "InProgress"
    gate.set()
    info = wait_for_status(cd, deployment_id)
    stop_all(hosts)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    first = targets(cd, deployment_id)["fleet-0"]
    statuses = [e["status"] for e in first["lifecycleEvents"]]
    assert statuses == ["Succeeded", "Succeeded", "Succeeded", "Skipped", "Skipped", "Skipped", "Skipped"]
    assert [targets(cd, deployment_id)[f"fleet-{i}"]["status"] for i in (1, 2)] == ["Skipped", "Skipped"]
    assert [e for _, e, _ in hosts[0].log] == ["ApplicationStop", "DownloadBundle", "BeforeInstall"]


def test_a_host_whose_agent_never_polls_fails_after_the_pickup_timeout(landfall_factory, checker):
    server = landfall_factory(start=False)
    server.start("--agent-pickup-timeout", "2")
    cd = server.client()
    hosts = fleet(server, cd, 2, config="CodeDeployDefault.AllAtOnce")
    hosts[0].start()  # fleet-1's agent never runs
    deployment_id = deploy(cd)
    info = wait_for_status(cd, deployment_id, timeout=30)
    hosts[0].stop()
    assert info["status"] == "Succeeded"  # AllAtOnce: one success is enough
    dead = targets(cd, deployment_id)["fleet-1"]
    assert dead["status"] == "Failed"
    first = dead["lifecycleEvents"][0]
    assert first["status"] == "Failed" and "did not pick up" in first["diagnostics"]["message"]
    assert all(e["status"] == "Skipped" for e in dead["lifecycleEvents"][1:])


def test_server_killed_mid_deployment_resumes_without_running_anything_twice(server, cd):
    hosts = fleet(server, cd, 3)
    gate = threading.Event()
    installing = threading.Event()

    def install(command):
        installing.set()
        return "succeed" if gate.wait(30) else "fail"

    hosts[1].outcomes["Install"] = install
    for host in hosts:
        host.start()
    deployment_id = deploy(cd)
    # Inside Install (so BeforeInstall's completion has been answered): the server dies now.
    assert installing.wait(60), "host 1 never reached Install"
    server.restart(signal.SIGKILL)
    gate.set()  # host 1 completes its Install against the restarted server
    cd = server.client()
    info = wait_for_status(cd, deployment_id)
    stop_all(hosts)
    assert info["status"] == "Succeeded", info
    for host in hosts:
        assert [event for _, event, _ in host.log] == IN_PLACE, host.name


def test_agents_reach_only_their_own_commands(server, cd):
    one, other = fleet(server, cd, 2, config="CodeDeployDefault.AllAtOnce")
    deploy(cd)
    mine = wait_for(one.poll, message="a command for fleet-0")
    theirs = wait_for(other.poll, message="a command for fleet-1")
    # fleet-0's key cannot read, acknowledge or complete fleet-1's command, nor poll as fleet-1.
    for operation, body in [
        ("GetDeploymentSpecification", {"DeploymentExecutionId": theirs["DeploymentExecutionId"], "HostIdentifier": one.arn}),
        ("PutHostCommandAcknowledgement", {"HostCommandIdentifier": theirs["HostCommandIdentifier"]}),
        ("PutHostCommandComplete", {"HostCommandIdentifier": theirs["HostCommandIdentifier"], "CommandStatus": "Succeeded"}),
        ("PollHostCommand", {"HostIdentifier": other.arn}),
    ]:
        status, body = one.call(operation, body)
        assert (status, body["__type"]) == (400, "ClientException"), (operation, body)
        assert "DeploymentSpecification" not in body
    # An unknown command gets the same answer as someone else's.
    status, body = one.call("PutHostCommandAcknowledgement", {"HostCommandIdentifier": "hc-does-not-exist"})
    assert body["__type"] == "ClientException"
    # Its own command works; an API key is no agent key.
    assert one.call("GetDeploymentSpecification", {"DeploymentExecutionId": mine["DeploymentExecutionId"], "HostIdentifier": one.arn})[0] == 200
    access_key_id, secret, _ = server.admin_key()
    status, body = one.call("PollHostCommand", {"HostIdentifier": one.arn}, key=(access_key_id, secret))
    assert body["__type"] == "AccessDeniedException"
    # And an agent key reaches no public API operation.
    agent = server.client(*one.key)
    code, _ = refusal(agent.list_applications)
    assert code == "AccessDeniedException"


def test_the_specification_is_the_json_the_official_agent_reads(server, cd):
    (host,) = fleet(server, cd, 1)
    deployment_id = deploy(cd, fileExistsBehavior="OVERWRITE")
    command = wait_for(host.poll, message="a command")
    assert command["CommandName"] == "ApplicationStop"
    assert command["HostIdentifier"] == host.arn
    status, answer = host.call("GetDeploymentSpecification",
                               {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": host.arn})
    assert answer["DeploymentSystem"] == "CodeDeploy"
    envelope = answer["DeploymentSpecification"]["GenericEnvelope"]
    assert envelope["Format"] == "PKCS7/JSON" and envelope["Payload"].startswith("-----BEGIN PKCS7-----")
    spec = json.loads(open_envelope(envelope["Payload"]))
    group = cd.get_deployment_group(applicationName="web", deploymentGroupName="fleet")["deploymentGroupInfo"]
    assert spec["DeploymentId"] == deployment_id
    assert spec["DeploymentGroupId"] == group["deploymentGroupId"]
    assert (spec["DeploymentGroupName"], spec["ApplicationName"]) == ("fleet", "web")
    assert spec["DeploymentCreator"] == "user" and spec["DeploymentType"] == "IN_PLACE"
    assert spec["Revision"] == {"RevisionType": "S3", "S3Revision": {"Bucket": "bundles", "Key": "app/v1.tgz", "BundleType": "tgz"}}
    assert spec["AgentActionOverrides"] == {"AgentOverrides": {"FileExistsBehavior": "OVERWRITE"}}
    assert "AllPossibleLifecycleEvents" not in spec
    # The envelope verifies against the server's own CA.
    ca = server.data_dir / "spec-signing" / "ca.pem"
    subprocess.run(["openssl", "smime", "-verify", "-inform", "PEM", "-CAfile", str(ca)],
                   input=envelope["Payload"].encode(), capture_output=True, check=True)
