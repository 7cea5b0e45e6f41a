"""Deployments and their targets: creation with target resolution from the group's tag selection,
planning (the first targets start at once; no instances fails the deployment), the
one-active-deployment rule, stop, request validation, Lambda and ECS deployments, the read and list
calls, the deployment-target and deprecated deployment-instance calls, and the blue/green and hook
calls that do not apply yet.

No agent runs here: a planned in-place deployment stays InProgress, its first targets waiting for
their hosts to pick up their first lifecycle event, until it is stopped."""

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, refusal
from hostsim import wait_for_status

ROLE = "arn:aws:iam::123456789012:role/CodeDeployService"
REVISION = {"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": "app/v1.zip", "bundleType": "zip"}}
IN_PLACE_EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                   "ApplicationStart", "ValidateService"]
BLOCK = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
ALLOW = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
LAMBDA_APPSPEC = (
    "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
    "        Name: fn\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n"
)
ECS_APPSPEC = json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
    "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
    "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80}}}}]})
DEPLOYMENT_ID = re.compile(r"d-[A-Z0-9]{9}")


def kv(key, value):
    return {"Key": key, "Value": value, "Type": "KEY_AND_VALUE"}


def revision_s3(key="app/v1.zip"):
    return {"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": key, "bundleType": "zip"}}


def appspec(content):
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}


def host(cd, name, **tags):
    cd.register_on_premises_instance(instanceName=name, iamUserArn=f"arn:aws:iam::123456789012:user/{name}")
    if tags:
        cd.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def server_group(cd, app="web", group="fleet", **settings):
    if app not in cd.list_applications()["applications"]:
        cd.create_application(applicationName=app, computePlatform="Server")
    cd.create_deployment_group(applicationName=app, deploymentGroupName=group, serviceRoleArn=ROLE, **settings)


def deploy(cd, app="web", group="fleet", **extra):
    extra.setdefault("revision", REVISION)
    return cd.create_deployment(applicationName=app, deploymentGroupName=group, **extra)["deploymentId"]


def deployment(cd, deployment_id):
    return cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def planned(cd, deployment_id, timeout=5.0):
    """The deployment once the server has planned it: planning runs just after CreateDeployment
    answers, so it may be Created for a moment. Still Created after `timeout`: returned as it is."""
    deadline = time.monotonic() + timeout
    while True:
        info = deployment(cd, deployment_id)
        if info["status"] != "Created" or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def overview(pending=0, in_progress=0, succeeded=0, failed=0, skipped=0):
    return {"Pending": pending, "InProgress": in_progress, "Succeeded": succeeded, "Failed": failed,
            "Skipped": skipped, "Ready": 0}


def assert_waits_for_its_first_event(cd, deployment_id, target_id, events=None):
    """A target the deployment started: InProgress, its first event Pending (queued for the agent)
    and none of its events run yet."""
    instance = target(cd, deployment_id, target_id)["instanceTarget"]
    assert instance["status"] == "InProgress", instance
    lifecycle = instance["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in lifecycle] == (events or IN_PLACE_EVENTS)
    assert {e["status"] for e in lifecycle} == {"Pending"}
    assert "startTime" not in lifecycle[0] and "endTime" not in lifecycle[0]


def target_ids(cd, deployment_id, **filters):
    ids, token = [], None
    while True:
        page = cd.list_deployment_targets(deploymentId=deployment_id, **filters, **({"nextToken": token} if token else {}))
        ids += page["targetIds"]
        token = page.get("nextToken")
        if not token:
            return sorted(ids)


def target(cd, deployment_id, target_id):
    return cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]


def all_deployments(cd, **filters):
    ids, token = [], None
    while True:
        page = cd.list_deployments(**filters, **({"nextToken": token} if token else {}))
        ids += page["deployments"]
        token = page.get("nextToken")
        if not token:
            return ids


def lambda_app(cd, app="fn", group="live"):
    cd.create_application(applicationName=app, computePlatform="Lambda")
    cd.create_deployment_group(applicationName=app, deploymentGroupName=group, serviceRoleArn=ROLE)


def ecs_app(cd, app="svc", group="prod"):
    cd.create_application(applicationName=app, computePlatform="ECS")
    cd.create_deployment_group(
        applicationName=app, deploymentGroupName=group, serviceRoleArn=ROLE,
        ecsServices=[{"serviceName": "web", "clusterName": "main"}],
        loadBalancerInfo={"targetGroupPairInfoList": [{
            "targetGroups": [{"name": "tg-blue"}, {"name": "tg-green"}],
            "prodTrafficRoute": {"listenerArns": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2"]},
        }]},
    )


# -- creation -------------------------------------------------------------------------------


def test_create_through_the_cli_and_get_the_deployment(server, cd):
    host(cd, "web-1", env="prod")
    host(cd, "web-2", env="prod")
    host(cd, "test-1", env="test")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    before = time.time()
    created = server.aws("deploy", "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                         "--s3-location", "bucket=bundles,key=app/v1.zip,bundleType=zip",
                         "--description", "release 1", "--file-exists-behavior", "OVERWRITE")
    assert created.ok, created.stderr
    deployment_id = created.json["deploymentId"]
    assert DEPLOYMENT_ID.fullmatch(deployment_id)

    assert planned(cd, deployment_id)["status"] == "InProgress"
    shown = server.aws("deploy", "get-deployment", "--deployment-id", deployment_id)
    assert shown.ok, shown.stderr
    info = shown.json["deploymentInfo"]
    assert info["deploymentId"] == deployment_id
    assert info["applicationName"] == "web" and info["deploymentGroupName"] == "fleet"
    assert info["status"] == "InProgress"
    assert info["creator"] == "user"
    assert info["revision"] == REVISION
    assert info["description"] == "release 1"
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    # One at a time: the first host has started, the other waits its turn.
    assert info["deploymentOverview"] == overview(pending=1, in_progress=1)
    assert info["fileExistsBehavior"] == "OVERWRITE"
    assert info["deploymentStyle"] == {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}
    assert info["computePlatform"] == "Server"
    assert info["ignoreApplicationStopFailures"] is False
    assert info["updateOutdatedInstancesOnly"] is False
    assert before - 1 <= info["createTime"] <= time.time() + 1
    assert info["createTime"] <= info["startTime"] <= time.time() + 1
    assert "completeTime" not in info and "errorInformation" not in info
    assert_waits_for_its_first_event(cd, deployment_id, "web-1")
    assert target(cd, deployment_id, "web-2")["instanceTarget"]["status"] == "Pending"
    assert target_ids(cd, deployment_id) == ["web-1", "web-2"]


def test_defaults_of_a_plain_deployment(cd):
    server_group(cd)
    info = deployment(cd, deploy(cd))
    assert info["fileExistsBehavior"] == "DISALLOW"
    assert info["deploymentOverview"]["Pending"] == 0
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"


def test_deployment_ids_are_unique(cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    ids = set()
    for _ in range(5):
        deployment_id = deploy(cd)
        assert cd.stop_deployment(deploymentId=deployment_id)["status"] == "Succeeded"
        assert DEPLOYMENT_ID.fullmatch(deployment_id)
        ids.add(deployment_id)
    assert len(ids) == 5


def test_deployment_config_precedence(cd):
    cd.create_deployment_config(deploymentConfigName="TwoAtATime", minimumHealthyHosts={"type": "HOST_COUNT", "value": 2})
    for name in ("web-1", "web-2", "web-3", "web-4"):
        host(cd, name, env="prod")
    prod = [kv("env", "prod")]
    server_group(cd, group="plain", onPremisesInstanceTagFilters=prod)
    server_group(cd, group="custom", deploymentConfigName="TwoAtATime", onPremisesInstanceTagFilters=prod)

    # The configuration that applies is also the one that runs: as many hosts start at once as
    # it lets go offline (4 hosts, 2 of them kept healthy: 2 at a time).
    first = deploy(cd, group="custom")
    info = planned(cd, first)
    assert info["deploymentConfigName"] == "TwoAtATime"
    assert info["deploymentOverview"] == overview(pending=2, in_progress=2)
    cd.stop_deployment(deploymentId=first)
    overridden = deploy(cd, group="custom", deploymentConfigName="CodeDeployDefault.AllAtOnce")
    info = planned(cd, overridden)
    assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert info["deploymentOverview"] == overview(in_progress=4)
    info = planned(cd, deploy(cd, group="plain"))
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["deploymentOverview"] == overview(pending=3, in_progress=1)


def test_deployment_keeps_the_group_style_it_was_created_with(cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    first = deploy(cd)
    cd.update_deployment_group(applicationName="web", currentDeploymentGroupName="fleet",
                               deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                               loadBalancerInfo={"targetGroupInfoList": [{"name": "web-tg"}]})
    assert deployment(cd, first)["deploymentStyle"]["deploymentOption"] == "WITHOUT_TRAFFIC_CONTROL"
    assert [e["lifecycleEventName"] for e in target(cd, first, "web-1")["instanceTarget"]["lifecycleEvents"]] == IN_PLACE_EVENTS
    cd.stop_deployment(deploymentId=first)

    second = deploy(cd)
    info = deployment(cd, second)
    assert info["deploymentStyle"] == {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert info["loadBalancerInfo"] == {"targetGroupInfoList": [{"name": "web-tg"}]}
    events = target(cd, second, "web-1")["instanceTarget"]["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in events] == BLOCK + IN_PLACE_EVENTS + ALLOW


# -- target selection -----------------------------------------------------------------------


def test_only_registered_matching_instances_become_targets(cd):
    host(cd, "prod-web", env="prod", role="web")
    host(cd, "prod-db", env="prod", role="db")
    host(cd, "test-web", env="test", role="web")
    host(cd, "test-api", env="test", role="api")
    host(cd, "untagged")
    host(cd, "gone", env="prod", role="web")
    cd.deregister_on_premises_instance(instanceName="gone")

    # Flat filters: any filter matches.
    server_group(cd, group="flat", onPremisesInstanceTagFilters=[kv("role", "db"), kv("env", "test")])
    # Tag set: one filter of every group matches.
    server_group(cd, group="set", onPremisesTagSet={"onPremisesTagSetList": [
        [kv("env", "prod"), kv("env", "test")],
        [kv("role", "web"), kv("role", "api")],
    ]})
    server_group(cd, group="set-prod", onPremisesTagSet={"onPremisesTagSetList": [[kv("env", "prod")], [kv("role", "web")]]})
    # EC2 selectors select among registered instances too; KEY_ONLY and VALUE_ONLY.
    server_group(cd, group="ec2", ec2TagFilters=[{"Key": "role", "Type": "KEY_ONLY"}])
    server_group(cd, group="value", onPremisesInstanceTagFilters=[{"Value": "api", "Type": "VALUE_ONLY"}])
    server_group(cd, group="none")

    expected = {
        "flat": ["prod-db", "test-api", "test-web"],
        "set": ["prod-web", "test-api", "test-web"],
        "set-prod": ["prod-web"],
        "ec2": ["prod-db", "prod-web", "test-api", "test-web"],
        "value": ["test-api"],
    }
    for group, names in expected.items():
        deployment_id = deploy(cd, group=group)
        assert target_ids(cd, deployment_id) == names, group
        info = planned(cd, deployment_id)
        assert info["status"] == "InProgress", group
        # One at a time: the first (by name, all being new) has started, the rest wait.
        assert info["deploymentOverview"] == overview(pending=len(names) - 1, in_progress=1), group
        assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["InProgress"]}) == names[:1], group
    # A group that selects nothing fails its deployment at once.
    empty = deploy(cd, group="none")
    info = planned(cd, empty)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "NO_INSTANCES"
    assert info["errorInformation"]["message"]
    assert info["deploymentOverview"] == overview()
    assert info["createTime"] <= info["completeTime"]
    assert cd.list_deployment_targets(deploymentId=empty)["targetIds"] == []


def test_targets_are_resolved_when_the_deployment_is_created(cd):
    host(cd, "early", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    deployment_id = deploy(cd)
    host(cd, "late", env="prod")
    cd.deregister_on_premises_instance(instanceName="early")
    assert target_ids(cd, deployment_id) == ["early"]


# -- one active deployment, stop ---------------------------------------------------------------


def test_one_active_deployment_per_group(server, cd):
    host(cd, "web-1", env="prod")
    host(cd, "web-2", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    server_group(cd, group="other")
    active = deploy(cd)
    code, message = refusal(cd.create_deployment, applicationName="web", deploymentGroupName="fleet",
                            revision=revision_s3("app/v2.zip"))
    assert code == "DeploymentLimitExceededException"
    assert message == f"The Deployment Group 'fleet' already has an active Deployment '{active}'"
    assert all_deployments(cd) == [active]
    # Another group of the application is not held up.
    other = deploy(cd, group="other")

    stopped = server.aws("deploy", "stop-deployment", "--deployment-id", active)
    assert stopped.ok, stopped.stderr
    assert stopped.json["status"] == "Succeeded"
    assert stopped.json["statusMessage"]
    info = deployment(cd, active)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert info["completeTime"] >= info["createTime"]
    assert info["deploymentOverview"] == {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 2,
                                          "Ready": 0}
    for name in ("web-1", "web-2"):
        skipped = target(cd, active, name)["instanceTarget"]
        assert skipped["status"] == "Skipped"
        assert {event["status"] for event in skipped["lifecycleEvents"]} == {"Skipped"}

    following = deploy(cd, revision=revision_s3("app/v2.zip"))
    assert sorted(all_deployments(cd)) == sorted([active, other, following])
    code, _ = refusal(cd.stop_deployment, deploymentId=active)
    assert code == "DeploymentAlreadyCompletedException"


def test_concurrent_creates_let_exactly_one_through(server, cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    clients = [server.client() for _ in range(8)]

    def attempt(index):
        try:
            return clients[index].create_deployment(applicationName="web", deploymentGroupName="fleet",
                                                    revision=revision_s3(f"app/v{index}.zip"))["deploymentId"]
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    winners = [outcome for outcome in outcomes if DEPLOYMENT_ID.fullmatch(outcome)]
    assert len(winners) == 1, outcomes
    assert sorted(set(outcomes) - set(winners)) == ["DeploymentLimitExceededException"]
    assert all_deployments(cd) == winners
    # Only the deployment that went through registered its revision.
    revisions = cd.list_application_revisions(applicationName="web")["revisions"]
    assert revisions == [revision_s3(f"app/v{outcomes.index(winners[0])}.zip")]
    assert target_ids(cd, winners[0]) == ["web-1"]


def test_rollback_settings_come_from_the_request_or_the_group(cd):
    group_setting = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    host(cd, "web-1", env="prod")
    server_group(cd, autoRollbackConfiguration=group_setting, onPremisesInstanceTagFilters=[kv("env", "prod")])
    inherited = deploy(cd)
    assert deployment(cd, inherited)["autoRollbackConfiguration"] == group_setting
    cd.stop_deployment(deploymentId=inherited)
    request_setting = {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]}
    alarms = {"enabled": False, "ignorePollAlarmFailure": False, "alarms": [{"name": "errors"}]}
    overridden = deploy(cd, autoRollbackConfiguration=request_setting, overrideAlarmConfiguration=alarms)
    info = deployment(cd, overridden)
    assert info["autoRollbackConfiguration"] == request_setting
    assert info["overrideAlarmConfiguration"] == alarms


def test_stop_with_rollback_and_no_successful_deployment_says_why(cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    deployment_id = deploy(cd)
    assert planned(cd, deployment_id)["status"] == "InProgress"
    assert cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)["status"] == "Succeeded"
    info = deployment(cd, deployment_id)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert "rollbackDeploymentId" not in info.get("rollbackInfo", {})
    assert info["rollbackInfo"]["rollbackMessage"]
    # No rollback deployment was made.
    assert all_deployments(cd) == [deployment_id]


def test_stop_unknown_or_malformed_deployment(cd):
    code, _ = refusal(cd.stop_deployment, deploymentId="d-AAAAAAAAA")
    assert code == "DeploymentDoesNotExistException"
    code, _ = refusal(cd.stop_deployment, deploymentId="not-an-id")
    assert code == "InvalidDeploymentIdException"


# -- request validation -------------------------------------------------------------------------


def test_create_refuses_bad_requests_and_leaves_nothing(server, cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    bad = [
        ({"applicationName": "nope"}, "ApplicationDoesNotExistException"),
        ({"deploymentGroupName": "nope"}, "DeploymentGroupDoesNotExistException"),
        ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
        ({"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"}, "InvalidDeploymentConfigNameException"),
        ({"deploymentConfigName": "bad name"}, "InvalidDeploymentConfigNameException"),
        ({"revision": appspec(LAMBDA_APPSPEC)}, "InvalidRevisionException"),
        ({"revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "JSON"}}},
         "InvalidRevisionException"),
        ({"description": "d" * 257}, "DescriptionTooLongException"),
        ({"fileExistsBehavior": "CLOBBER"}, "InvalidFileExistsBehaviorException"),
        ({"targetInstances": {"tagFilters": [kv("env", "prod")]}}, "InvalidTargetInstancesException"),
        ({"autoRollbackConfiguration": {"enabled": True, "events": []}}, "InvalidAutoRollbackConfigException"),
        ({"overrideAlarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
        ({"applicationName": "bad name"}, "InvalidApplicationNameException"),
        ({"deploymentGroupName": "bad name"}, "InvalidDeploymentGroupNameException"),
    ]
    for override, expected in bad:
        request = {"applicationName": "web", "deploymentGroupName": "fleet", "revision": REVISION, **override}
        code, _ = refusal(cd.create_deployment, **request)
        assert code == expected, override
    for missing, expected in [("revision", "RevisionRequiredException"),
                              ("applicationName", "ApplicationNameRequiredException"),
                              ("deploymentGroupName", "DeploymentGroupNameRequiredException")]:
        body = {"applicationName": "web", "deploymentGroupName": "fleet", "revision": REVISION}
        del body[missing]
        status, answer = server.raw("CodeDeploy_20141006.CreateDeployment", body)
        assert (status, answer["__type"]) == (400, expected)

    assert all_deployments(cd) == []
    assert cd.list_application_revisions(applicationName="web")["revisions"] == []
    # Nothing holds the group: a good request goes through.
    assert DEPLOYMENT_ID.fullmatch(deploy(cd))


# -- Lambda and ECS -----------------------------------------------------------------------------


def test_lambda_deployment_with_inline_appspec(cd):
    lambda_app(cd)
    for flag, expected in [("ignoreApplicationStopFailures", "InvalidIgnoreApplicationStopFailuresValueException"),
                           ("updateOutdatedInstancesOnly", "InvalidUpdateOutdatedInstancesOnlyValueException")]:
        code, _ = refusal(cd.create_deployment, applicationName="fn", deploymentGroupName="live",
                          revision=appspec(LAMBDA_APPSPEC), **{flag: True})
        assert code == expected
    for config in ("CodeDeployDefault.OneAtATime", "CodeDeployDefault.ECSAllAtOnce"):
        code, _ = refusal(cd.create_deployment, applicationName="fn", deploymentGroupName="live",
                          revision=appspec(LAMBDA_APPSPEC), deploymentConfigName=config)
        assert code == "InvalidDeploymentConfigNameException"
    code, _ = refusal(cd.create_deployment, applicationName="fn", deploymentGroupName="live", revision=REVISION)
    assert code == "InvalidRevisionException"
    assert all_deployments(cd) == []

    digest = hashlib.sha256(LAMBDA_APPSPEC.encode()).hexdigest()
    deployment_id = deploy(cd, app="fn", group="live", revision=appspec(LAMBDA_APPSPEC),
                           ignoreApplicationStopFailures=False, updateOutdatedInstancesOnly=False)
    info = deployment(cd, deployment_id)
    assert info["computePlatform"] == "Lambda"
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert info["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    # The content stays out of the deployment; its sha256 names it.
    assert info["revision"] == {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": digest}}
    assert "fileExistsBehavior" not in info
    batch = cd.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"]
    assert batch[0]["revision"] == info["revision"]
    got = cd.get_application_revision(applicationName="fn", revision=info["revision"])
    assert got["revision"]["appSpecContent"]["content"] == LAMBDA_APPSPEC


def test_lifecycle_hook_status_calls(cd):
    lambda_app(cd)
    server_group(cd)
    lambda_id = deploy(cd, app="fn", group="live", revision=appspec(LAMBDA_APPSPEC))
    server_id = deploy(cd)
    code, _ = refusal(cd.put_lifecycle_event_hook_execution_status, deploymentId=server_id,
                      lifecycleEventHookExecutionId="hook-1", status="Succeeded")
    assert code == "UnsupportedActionForDeploymentTypeException"
    code, message = refusal(cd.put_lifecycle_event_hook_execution_status, deploymentId=lambda_id,
                            lifecycleEventHookExecutionId="no-such-hook", status="Succeeded")
    assert code == "InvalidLifecycleEventHookExecutionIdException"
    assert "no-such-hook" in message
    for status in ("Pending", "InProgress", "Skipped", "Unknown", "Done"):
        code, _ = refusal(cd.put_lifecycle_event_hook_execution_status, deploymentId=lambda_id,
                          lifecycleEventHookExecutionId="hook-1", status=status)
        assert code == "InvalidLifecycleEventHookExecutionStatusException", status
    code, _ = refusal(cd.put_lifecycle_event_hook_execution_status, deploymentId="d-AAAAAAAAA",
                      lifecycleEventHookExecutionId="hook-1", status="Succeeded")
    assert code == "DeploymentDoesNotExistException"
    # This server has no platform credentials: the deployment fails when it would move traffic,
    # and says why.
    assert wait_for_status(cd, lambda_id)["status"] == "Failed"
    target = cd.get_deployment_target(deploymentId=lambda_id, targetId="fn:live")["deploymentTarget"]["lambdaTarget"]
    allow = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
    assert allow["status"] == "Failed" and "LANDFALL_AWS_ACCESS_KEY_ID" in allow["diagnostics"]["message"], allow


def test_ecs_deployment_and_the_deprecated_instance_calls(cd):
    ecs_app(cd)
    code, _ = refusal(cd.create_deployment, applicationName="svc", deploymentGroupName="prod",
                      revision=appspec(ECS_APPSPEC), ignoreApplicationStopFailures=True)
    assert code == "InvalidIgnoreApplicationStopFailuresValueException"
    deployment_id = deploy(cd, app="svc", group="prod", revision=appspec(ECS_APPSPEC))
    info = deployment(cd, deployment_id)
    assert info["computePlatform"] == "ECS"
    assert info["deploymentConfigName"] == "CodeDeployDefault.ECSAllAtOnce"
    assert "content" not in info["revision"]["appSpecContent"]
    assert info["revision"]["appSpecContent"]["sha256"] == hashlib.sha256(ECS_APPSPEC.encode()).hexdigest()
    assert info["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"]["action"] == "TERMINATE"

    calls = [
        lambda: cd.list_deployment_instances(deploymentId=deployment_id),
        lambda: cd.batch_get_deployment_instances(deploymentId=deployment_id, instanceIds=["main:web"]),
        lambda: cd.get_deployment_instance(deploymentId=deployment_id, instanceId="main:web"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "InvalidComputePlatformException"
    # Its one target is the service. This server has no platform credentials: the deployment
    # fails when it would create the replacement task set, and says why.
    assert wait_for_status(cd, deployment_id)["status"] == "Failed"
    assert cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"] == ["main:web"]
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="main:web")["deploymentTarget"]
    install = next(e for e in target["ecsTarget"]["lifecycleEvents"] if e["lifecycleEventName"] == "Install")
    assert install["status"] == "Failed" and "LANDFALL_AWS_ACCESS_KEY_ID" in install["diagnostics"]["message"], install
    error = deployment(cd, deployment_id)["errorInformation"]
    assert error["code"] == "ECS_UPDATE_ERROR" and error["message"].startswith("The Install lifecycle event failed: ")


# -- reads ------------------------------------------------------------------------------------


def test_get_unknown_and_malformed_deployments(server, cd):
    code, message = refusal(cd.get_deployment, deploymentId="d-AAAAAAAAA")
    assert code == "DeploymentDoesNotExistException"
    assert "d-AAAAAAAAA" in message
    for bad in ("d-aaaaaaaaa", "d-AAAA", "x-AAAAAAAAA", "d-AAAAAAAAAA"):
        code, _ = refusal(cd.get_deployment, deploymentId=bad)
        assert code == "InvalidDeploymentIdException", bad


def test_batch_get_deployments(cd):
    server_group(cd)
    server_group(cd, group="other")
    first = deploy(cd)
    second = deploy(cd, group="other")
    answer = cd.batch_get_deployments(deploymentIds=[first, "d-AAAAAAAAA", second])["deploymentsInfo"]
    assert sorted(info["deploymentId"] for info in answer) == sorted([first, second])
    assert cd.batch_get_deployments(deploymentIds=["d-AAAAAAAAA"])["deploymentsInfo"] == []
    code, _ = refusal(cd.batch_get_deployments, deploymentIds=[first, "nope"])
    assert code == "InvalidDeploymentIdException"
    code, _ = refusal(cd.batch_get_deployments, deploymentIds=[first] * 26)
    assert code == "BatchLimitExceededException"
    assert len(cd.batch_get_deployments(deploymentIds=[f"d-AAAAAAA{i:02d}" for i in range(24)] + [first])
               ["deploymentsInfo"]) == 1


# -- listing ----------------------------------------------------------------------------------


def test_list_deployments_filters(server, cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    server_group(cd, group="other", onPremisesInstanceTagFilters=[kv("env", "prod")])
    server_group(cd, group="empty")
    stopped = deploy(cd)
    cd.stop_deployment(deploymentId=stopped)
    time.sleep(0.02)
    active = deploy(cd)
    elsewhere = deploy(cd, group="other")
    time.sleep(0.02)
    failed = deploy(cd, group="empty")
    assert [planned(cd, d)["status"] for d in (stopped, active, elsewhere, failed)] == [
        "Stopped", "InProgress", "InProgress", "Failed"]

    assert all_deployments(cd) == [failed, elsewhere, active, stopped]
    assert all_deployments(cd, applicationName="web", deploymentGroupName="fleet") == [active, stopped]
    result = server.aws("deploy", "list-deployments", "--application-name", "web", "--deployment-group-name", "fleet",
                        "--include-only-statuses", "Stopped")
    assert result.ok, result.stderr
    assert result.json["deployments"] == [stopped]
    assert all_deployments(cd, includeOnlyStatuses=["Created", "Queued", "InProgress"]) == [elsewhere, active]
    assert all_deployments(cd, includeOnlyStatuses=["Created"]) == []
    assert all_deployments(cd, includeOnlyStatuses=["Succeeded", "Failed"]) == [failed]
    assert all_deployments(cd, includeOnlyStatuses=["Succeeded"]) == []

    code, message = refusal(cd.list_deployments, includeOnlyStatuses=["Created", "Finished"])
    assert code == "InvalidDeploymentStatusException"
    assert "Finished" in message
    code, _ = refusal(cd.list_deployments, applicationName="web")
    assert code == "DeploymentGroupNameRequiredException"
    code, _ = refusal(cd.list_deployments, deploymentGroupName="fleet")
    assert code == "ApplicationNameRequiredException"
    code, _ = refusal(cd.list_deployments, applicationName="nope", deploymentGroupName="fleet")
    assert code == "ApplicationDoesNotExistException"
    code, _ = refusal(cd.list_deployments, applicationName="web", deploymentGroupName="nope")
    assert code == "DeploymentGroupDoesNotExistException"


def test_list_deployments_by_create_time(server, cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    first = deploy(cd)
    cd.stop_deployment(deploymentId=first)
    time.sleep(0.05)
    second = deploy(cd)
    first_time = deployment(cd, first)["createTime"].timestamp()
    second_time = deployment(cd, second)["createTime"].timestamp()
    assert second_time > first_time

    def listed(time_range):
        status, body = server.raw("CodeDeploy_20141006.ListDeployments", {"createTimeRange": time_range})
        assert status == 200, body
        return body["deployments"]

    assert listed({"start": second_time}) == [second]
    assert listed({"end": first_time}) == [first]
    assert listed({"start": first_time, "end": second_time}) == [second, first]
    assert listed({"start": second_time + 60}) == []
    status, body = server.raw("CodeDeploy_20141006.ListDeployments",
                              {"createTimeRange": {"start": second_time, "end": first_time}})
    assert body["__type"] == "InvalidTimeRangeException"
    code, _ = refusal(cd.list_deployments, createTimeRange={"start": time.time() + 3600, "end": time.time()})
    assert code == "InvalidTimeRangeException"


def test_list_deployments_pages_past_one_page(server, cd):
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    created = []
    for _ in range(105):
        created.append(deploy(cd))
        cd.stop_deployment(deploymentId=created[-1])
    first = cd.list_deployments()
    assert len(first["deployments"]) == 100 and first["nextToken"]
    assert all_deployments(cd) == created[::-1]
    result = server.aws("deploy", "list-deployments", "--application-name", "web", "--deployment-group-name", "fleet")
    assert result.ok, result.stderr
    assert result.json["deployments"] == created[::-1]
    code, _ = refusal(cd.list_deployments, nextToken="garbage")
    assert code == "InvalidNextTokenException"


# -- deployment targets -------------------------------------------------------------------------


def test_target_calls(server, cd):
    host(cd, "web-1", env="prod")
    host(cd, "web-2", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    deployment_id = deploy(cd)
    arns = {name: cd.get_on_premises_instance(instanceName=name)["instanceInfo"]["instanceArn"] for name in ("web-1", "web-2")}
    assert planned(cd, deployment_id)["status"] == "InProgress"

    listed = server.aws("deploy", "list-deployment-targets", "--deployment-id", deployment_id,
                        "--target-filters", '{"TargetStatus": ["Pending", "InProgress"]}')
    assert listed.ok, listed.stderr
    assert sorted(listed.json["targetIds"]) == ["web-1", "web-2"]
    # One at a time: web-1 has started, web-2 waits.
    assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["InProgress"]}) == ["web-1"]
    assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["Pending"]}) == ["web-2"]
    assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["Skipped", "Failed"]}) == []

    one = target(cd, deployment_id, "web-1")
    assert one["deploymentTargetType"] == "InstanceTarget"
    instance = one["instanceTarget"]
    assert instance["deploymentId"] == deployment_id
    assert instance["targetId"] == "web-1"
    assert instance["targetArn"] == arns["web-1"]
    assert instance["status"] == "InProgress"
    assert instance["lastUpdatedAt"]
    # Only blue/green targets belong to a Blue or Green fleet.
    assert "instanceLabel" not in instance
    assert target_ids(cd, deployment_id, targetFilters={"ServerInstanceLabel": ["Blue", "Green"]}) == []
    assert_waits_for_its_first_event(cd, deployment_id, "web-1")
    waiting = target(cd, deployment_id, "web-2")["instanceTarget"]
    assert waiting["status"] == "Pending"
    assert [e["lifecycleEventName"] for e in waiting["lifecycleEvents"]] == IN_PLACE_EVENTS
    assert {e["status"] for e in waiting["lifecycleEvents"]} == {"Pending"}

    batch = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=["web-2", "web-1"])
    assert [t["instanceTarget"]["targetId"] for t in batch["deploymentTargets"]] == ["web-2", "web-1"]

    code, _ = refusal(cd.batch_get_deployment_targets, deploymentId=deployment_id, targetIds=["web-1", "ghost"])
    assert code == "DeploymentTargetDoesNotExistException"
    code, _ = refusal(cd.batch_get_deployment_targets, deploymentId=deployment_id, targetIds=["web-1"] * 26)
    assert code == "DeploymentTargetListSizeExceededException"
    code, _ = refusal(cd.get_deployment_target, deploymentId=deployment_id, targetId="ghost")
    assert code == "DeploymentTargetDoesNotExistException"
    code, _ = refusal(cd.list_deployment_targets, deploymentId=deployment_id, targetFilters={"Colour": ["Blue"]})
    assert code == "InvalidTargetFilterNameException"
    code, _ = refusal(cd.list_deployment_targets, deploymentId=deployment_id, targetFilters={"TargetStatus": ["Lost"]})
    assert code == "InvalidInstanceStatusException"
    code, _ = refusal(cd.get_deployment_target, deploymentId="d-AAAAAAAAA", targetId="web-1")
    assert code == "DeploymentDoesNotExistException"

    assert cd.stop_deployment(deploymentId=deployment_id)["status"] == "Succeeded"
    assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["Skipped"]}) == ["web-1", "web-2"]
    assert target_ids(cd, deployment_id, targetFilters={"TargetStatus": ["Pending", "InProgress"]}) == []


def test_deprecated_instance_calls(server, cd):
    host(cd, "web-1", env="prod")
    host(cd, "web-2", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    deployment_id = deploy(cd)
    arns = {name: cd.get_on_premises_instance(instanceName=name)["instanceInfo"]["instanceArn"] for name in ("web-1", "web-2")}
    assert planned(cd, deployment_id)["status"] == "InProgress"

    result = server.aws("deploy", "list-deployment-instances", "--deployment-id", deployment_id)
    assert result.ok, result.stderr
    assert sorted(result.json["instancesList"]) == sorted(arns.values())
    assert cd.list_deployment_instances(deploymentId=deployment_id, instanceStatusFilter=["Skipped"])["instancesList"] == []
    # One at a time: web-1 has started, web-2 waits.
    in_progress = cd.list_deployment_instances(deploymentId=deployment_id, instanceStatusFilter=["InProgress"])
    assert in_progress["instancesList"] == [arns["web-1"]]
    pending = cd.list_deployment_instances(deploymentId=deployment_id, instanceStatusFilter=["Pending"])
    assert pending["instancesList"] == [arns["web-2"]]

    summary = cd.get_deployment_instance(deploymentId=deployment_id, instanceId="web-1")["instanceSummary"]
    assert summary["instanceId"] == arns["web-1"]
    assert summary["deploymentId"] == deployment_id
    assert summary["status"] == "InProgress"
    assert "instanceType" not in summary
    assert [e["lifecycleEventName"] for e in summary["lifecycleEvents"]] == IN_PLACE_EVENTS
    assert {e["status"] for e in summary["lifecycleEvents"]} == {"Pending"}
    by_arn = cd.get_deployment_instance(deploymentId=deployment_id, instanceId=arns["web-2"])["instanceSummary"]
    assert by_arn["instanceId"] == arns["web-2"]
    assert by_arn["status"] == "Pending"

    batch = cd.batch_get_deployment_instances(deploymentId=deployment_id, instanceIds=["web-1", "ghost"])
    assert [s["instanceId"] for s in batch["instancesSummary"]] == [arns["web-1"]]
    assert "ghost" in batch["errorMessage"]
    code, _ = refusal(cd.batch_get_deployment_instances, deploymentId=deployment_id, instanceIds=["web-1"] * 26)
    assert code == "BatchLimitExceededException"
    code, _ = refusal(cd.get_deployment_instance, deploymentId=deployment_id, instanceId="ghost")
    assert code == "InstanceDoesNotExistException"
    code, _ = refusal(cd.list_deployment_instances, deploymentId=deployment_id, instanceTypeFilter=["Green"])
    assert code == "InvalidDeploymentInstanceTypeException"


def test_target_and_instance_lists_page_past_100(server, cd):
    # "p" and "p-1" sort one way by name and the other way by instance ARN ("p_…" > "p-1_…").
    names = [f"a{i:03d}" for i in range(99)] + ["p", "p-1", "q"]
    for name in names:
        cd.register_on_premises_instance(instanceName=name, iamUserArn=f"arn:aws:iam::123456789012:user/{name}")
    cd.add_tags_to_on_premises_instances(instanceNames=names[:100], tags=[{"Key": "env", "Value": "prod"}])
    cd.add_tags_to_on_premises_instances(instanceNames=names[100:], tags=[{"Key": "env", "Value": "prod"}])
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    deployment_id = deploy(cd)
    assert planned(cd, deployment_id)["deploymentOverview"] == overview(pending=len(names) - 1, in_progress=1)

    first = cd.list_deployment_targets(deploymentId=deployment_id)
    assert len(first["targetIds"]) == 100 and first["nextToken"]
    assert target_ids(cd, deployment_id) == sorted(names)

    arns, token = [], None
    while True:
        page = cd.list_deployment_instances(deploymentId=deployment_id, **({"nextToken": token} if token else {}))
        arns += page["instancesList"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(arns) == len(set(arns)) == len(names)


# -- blue/green ---------------------------------------------------------------------------------


def blue_green_group(cd):
    server_group(cd, group="bg",
                 deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                 loadBalancerInfo={"targetGroupInfoList": [{"name": "web-tg"}]},
                 onPremisesInstanceTagFilters=[kv("color", "blue")])


def test_blue_green_deployment_targets_both_fleets(cd):
    host(cd, "blue-1", color="blue")
    host(cd, "green-1", color="green")
    host(cd, "green-2", color="green")
    blue_green_group(cd)
    code, _ = refusal(cd.create_deployment, applicationName="web", deploymentGroupName="bg", revision=REVISION)
    assert code == "InvalidTargetInstancesException"
    assert all_deployments(cd) == []

    deployment_id = deploy(cd, group="bg", targetInstances={"tagFilters": [kv("color", "green")]})
    info = deployment(cd, deployment_id)
    assert info["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert info["targetInstances"] == {"tagFilters": [kv("color", "green")]}
    assert info["blueGreenDeploymentConfiguration"]["greenFleetProvisioningOption"]["action"] == "DISCOVER_EXISTING"
    assert info["instanceTerminationWaitTimeStarted"] is False
    # Green installs first (these hosts have no agents: it stays at that); Blue waits.
    overview = info["deploymentOverview"]
    assert overview["Pending"] + overview["InProgress"] == 3 and overview["Pending"] >= 1

    assert target_ids(cd, deployment_id, targetFilters={"ServerInstanceLabel": ["Blue"]}) == ["blue-1"]
    assert target_ids(cd, deployment_id, targetFilters={"ServerInstanceLabel": ["Green"]}) == ["green-1", "green-2"]
    code, _ = refusal(cd.list_deployment_targets, deploymentId=deployment_id,
                      targetFilters={"ServerInstanceLabel": ["Purple"]})
    assert code == "InvalidInstanceTypeException"
    blue = target(cd, deployment_id, "blue-1")["instanceTarget"]
    assert blue["instanceLabel"] == "Blue"
    # The group takes its original hosts out of service (TERMINATE, the default): their
    # applications are stopped after the termination wait.
    assert [e["lifecycleEventName"] for e in blue["lifecycleEvents"]] == BLOCK + ["ApplicationStop"]
    green = target(cd, deployment_id, "green-1")["instanceTarget"]
    assert green["instanceLabel"] == "Green"
    assert [e["lifecycleEventName"] for e in green["lifecycleEvents"]] == IN_PLACE_EVENTS + ALLOW
    green_arns = cd.list_deployment_instances(deploymentId=deployment_id, instanceTypeFilter=["Green"])["instancesList"]
    assert len(green_arns) == 2 and all("instance/green-" in arn for arn in green_arns)


def test_a_host_pool_can_be_the_replacement_fleet(server, cd):
    host(cd, "blue-1", color="blue")
    host(cd, "spare-1")
    host(cd, "spare-2")
    assert server.landfall("pool", "create", "replacements", "spare-1", "spare-2").ok
    blue_green_group(cd)
    code, message = refusal(cd.create_deployment, applicationName="web", deploymentGroupName="bg", revision=REVISION,
                            targetInstances={"autoScalingGroups": ["no-such-pool"]})
    assert code == "InvalidAutoScalingGroupException" and "no-such-pool" in message
    assert all_deployments(cd) == []

    deployment_id = deploy(cd, group="bg", targetInstances={"autoScalingGroups": ["replacements"]})
    assert target_ids(cd, deployment_id, targetFilters={"ServerInstanceLabel": ["Blue"]}) == ["blue-1"]
    assert target_ids(cd, deployment_id, targetFilters={"ServerInstanceLabel": ["Green"]}) == ["spare-1", "spare-2"]


def test_continue_and_skip_wait(cd):
    host(cd, "blue-1", color="blue")
    host(cd, "green-1", color="green")
    host(cd, "web-1", env="prod")
    server_group(cd, onPremisesInstanceTagFilters=[kv("env", "prod")])
    blue_green_group(cd)
    in_place = deploy(cd)
    blue_green = deploy(cd, group="bg", targetInstances={"tagFilters": [kv("color", "green")]})
    assert planned(cd, in_place)["status"] == "InProgress"

    for wait in ("READY_WAIT", "TERMINATION_WAIT"):
        code, _ = refusal(cd.continue_deployment, deploymentId=in_place, deploymentWaitType=wait)
        assert code == "UnsupportedActionForDeploymentTypeException"
    code, _ = refusal(cd.skip_wait_time_for_instance_termination, deploymentId=in_place)
    assert code == "UnsupportedActionForDeploymentTypeException"

    code, _ = refusal(cd.continue_deployment, deploymentId=blue_green, deploymentWaitType="READY_WAIT")
    assert code == "DeploymentIsNotInReadyStateException"
    code, _ = refusal(cd.continue_deployment, deploymentId=blue_green)
    assert code == "DeploymentIsNotInReadyStateException"
    code, _ = refusal(cd.continue_deployment, deploymentId=blue_green, deploymentWaitType="SOON")
    assert code == "InvalidDeploymentWaitTypeException"
    code, _ = refusal(cd.continue_deployment, deploymentId=blue_green, deploymentWaitType="TERMINATION_WAIT")
    assert code == "InvalidDeploymentStatusException"
    code, _ = refusal(cd.skip_wait_time_for_instance_termination, deploymentId=blue_green)
    assert code == "DeploymentNotStartedException"
    assert deployment(cd, blue_green)["status"] in ("Created", "InProgress")

    cd.stop_deployment(deploymentId=blue_green)
    code, _ = refusal(cd.continue_deployment, deploymentId=blue_green, deploymentWaitType="READY_WAIT")
    assert code == "DeploymentAlreadyCompletedException"
    code, _ = refusal(cd.continue_deployment, deploymentId="d-AAAAAAAAA", deploymentWaitType="READY_WAIT")
    assert code == "DeploymentDoesNotExistException"
