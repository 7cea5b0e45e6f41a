"""Lambda deployments carried out through the Lambda API of a local AWS implementation (moto):
hooks invoked with their execution ids and reporting through PutLifecycleEventHookExecutionStatus,
the alias's traffic moved as the deployment configuration says, a failed hook putting the alias
back. The aws CLI and boto3 drive Landfall; moto's own recorder shows what Landfall invoked."""

import io
import urllib.parse
import zipfile

import pytest

from aws_platforms import Moto
from hostsim import wait_for, wait_for_status
from monitoring import Backend, Prometheus

ROLE = "arn:aws:iam::123456789012:role/CodeDeployService"


def code(version):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", f"def handler(event, context):\n    return {version!r}\n")
    return buffer.getvalue()


@pytest.fixture
def platform(moto, landfall_factory):
    """A server driving moto's Lambda (see `prepare`)."""
    server = landfall_factory(start=False)
    server.start(env=moto.server_env())
    return prepare(server, moto)


def prepare(server, moto, **group):
    """Function `app` with versions 1 and 2 and alias `live` on 1, two hook functions, and the
    application and deployment group (`group`: more of its settings)."""
    trust = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
    role = moto.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    lam = moto.client("lambda")
    lam.create_function(FunctionName="app", Runtime="python3.12", Role=role, Handler="index.handler",
                        Code={"ZipFile": code("v1")})
    assert lam.publish_version(FunctionName="app")["Version"] == "1"
    lam.update_function_code(FunctionName="app", ZipFile=code("v2"))
    assert lam.publish_version(FunctionName="app")["Version"] == "2"
    lam.create_alias(FunctionName="app", Name="live", FunctionVersion="1")
    for hook in ("CodeDeployHook_pre", "CodeDeployHook_post"):
        lam.create_function(FunctionName=hook, Runtime="python3.12", Role=role, Handler="index.handler",
                            Code={"ZipFile": code(hook)})
    cd = server.client()
    cd.create_application(applicationName="app", computePlatform="Lambda")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="live", serviceRoleArn=ROLE, **group)
    return server, cd, lam


def appspec(hooks=True, current=True):
    """Without `current`, the AppSpec leaves CurrentVersion out: the alias's version is used."""
    text = ("version: 0.0\nResources:\n  - app:\n      Type: AWS::Lambda::Function\n      Properties:\n"
            "        Name: app\n        Alias: live\n" + ("        CurrentVersion: 1\n" if current else "")
            + "        TargetVersion: 2\n")
    if hooks:
        text += "Hooks:\n  - BeforeAllowTraffic: CodeDeployHook_pre\n  - AfterAllowTraffic: CodeDeployHook_post\n"
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": text}}


def start_canary(cd):
    """A deployment without hooks (nor CurrentVersion) by a 10 %, one-minute canary."""
    canary_config(cd)
    return cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                revision=appspec(hooks=False, current=False),
                                deploymentConfigName="Canary10Percent1Minute")["deploymentId"]


def canary_config(cd):
    cd.create_deployment_config(deploymentConfigName="Canary10Percent1Minute", computePlatform="Lambda",
                                trafficRoutingConfig={"type": "TimeBasedCanary", "timeBasedCanary": {
                                    "canaryPercentage": 10, "canaryInterval": 1}})


def alias(lam):
    found = lam.get_alias(FunctionName="app", Name="live")
    return found["FunctionVersion"], found.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})


def hook_call(moto, hook, deployment_id):
    """The execution id Landfall invoked `hook` with for this deployment (waits for it)."""
    def invoked():
        calls = [c for c in moto.invocations(hook) if c.get("DeploymentId") == deployment_id]
        return calls[0]["LifecycleEventHookExecutionId"] if calls else None
    return wait_for(invoked, timeout=30, message=f"{hook} to be invoked")


def events(cd, deployment_id):
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="app:live")["deploymentTarget"]
    assert target["deploymentTargetType"] == "LambdaTarget" and "instanceTarget" not in target, target
    return target["lambdaTarget"]


def test_hooks_run_and_the_alias_moves_to_the_target_version(platform, moto):
    server, cd, lam = platform
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                         revision=appspec())["deploymentId"]
    before = hook_call(moto, "CodeDeployHook_pre", deployment_id)
    # Traffic waits for the hook's report.
    assert alias(lam) == ("1", {})
    wait_for(lambda: [e["status"] for e in events(cd, deployment_id)["lifecycleEvents"]] == [
        "InProgress", "Pending", "Pending"], message="BeforeAllowTraffic in progress")
    assert alias(lam) == ("1", {})
    # Reported with the aws CLI, as a hook function would with an SDK.
    reported = server.aws("deploy", "put-lifecycle-event-hook-execution-status", "--deployment-id", deployment_id,
                          "--lifecycle-event-hook-execution-id", before, "--status", "Succeeded")
    assert reported.ok and reported.json["lifecycleEventHookExecutionId"] == before, reported.stderr
    after = hook_call(moto, "CodeDeployHook_post", deployment_id)
    assert alias(lam) == ("2", {})
    again = server.aws("deploy", "put-lifecycle-event-hook-execution-status", "--deployment-id", deployment_id,
                       "--lifecycle-event-hook-execution-id", before, "--status", "Succeeded")
    assert not again.ok and "LifecycleEventAlreadyCompletedException" in again.stderr
    cd.put_lifecycle_event_hook_execution_status(deploymentId=deployment_id, lifecycleEventHookExecutionId=after,
                                                 status="Succeeded")
    assert wait_for_status(cd, deployment_id)["status"] == "Succeeded"
    target = events(cd, deployment_id)
    assert [(e["lifecycleEventName"], e["status"]) for e in target["lifecycleEvents"]] == [
        ("BeforeAllowTraffic", "Succeeded"), ("AllowTraffic", "Succeeded"), ("AfterAllowTraffic", "Succeeded")]
    assert target["status"] == "Succeeded"
    assert target["targetArn"] == lam.get_alias(FunctionName="app", Name="live")["AliasArn"]
    assert target["lambdaFunctionInfo"] == {"functionName": "app", "functionAlias": "live", "currentVersion": "1",
                                            "targetVersion": "2", "targetVersionWeight": 1.0}
    # Each hook was invoked once.
    for hook in ("CodeDeployHook_pre", "CodeDeployHook_post"):
        assert [c["DeploymentId"] for c in moto.invocations(hook)] == [deployment_id], hook


def test_a_failed_hook_fails_the_deployment_and_leaves_the_alias(platform, moto):
    server, cd, lam = platform
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                         revision=appspec())["deploymentId"]
    before = hook_call(moto, "CodeDeployHook_pre", deployment_id)
    cd.put_lifecycle_event_hook_execution_status(deploymentId=deployment_id, lifecycleEventHookExecutionId=before,
                                                 status="Failed")
    info = wait_for_status(cd, deployment_id)
    assert info["status"] == "Failed", info
    assert alias(lam) == ("1", {})
    assert moto.invocations("CodeDeployHook_post") == []
    statuses = [(e["lifecycleEventName"], e["status"]) for e in events(cd, deployment_id)["lifecycleEvents"]]
    assert statuses[0] == ("BeforeAllowTraffic", "Failed"), statuses


def test_a_canary_shifts_ten_percent_then_the_rest(platform, moto):
    server, cd, lam = platform
    deployment_id = start_canary(cd)
    # No hooks: straight to AllowTraffic, which holds 10 % on version 2 for a minute.
    assert wait_for(lambda: alias(lam) == ("1", {"2": 0.1}), timeout=30, message="10 % on version 2")
    shown = events(cd, deployment_id)["lambdaFunctionInfo"]
    # The version the alias had, read from it.
    assert (shown["currentVersion"], shown["targetVersionWeight"]) == ("1", 0.1)
    page = server.console_page(f"/console/deployments/{deployment_id}")
    assert "<h2>Traffic</h2><p>Alias live of app: version 2 10 % · version 1 90 %</p>" in page
    assert cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "InProgress"
    assert wait_for_status(cd, deployment_id, timeout=120)["status"] == "Succeeded"
    assert alias(lam) == ("2", {})


def test_a_stop_mid_canary_rolls_the_alias_back_in_a_new_deployment(platform, moto):
    server, cd, lam = platform
    deployment_id = start_canary(cd)
    wait_for(lambda: alias(lam) == ("1", {"2": 0.1}), timeout=30, message="10 % on version 2")
    cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    stopped = wait_for_status(cd, deployment_id)
    assert stopped["status"] == "Stopped", stopped
    # The shift was cut short, not waited for.
    allow = next(e for e in events(cd, deployment_id)["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
    assert allow["status"] == "Failed" and "stopped during AllowTraffic" in allow["diagnostics"]["message"], allow
    rollback_id = stopped["rollbackInfo"]["rollbackDeploymentId"]
    rollback = wait_for_status(cd, rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert rollback["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    # All the traffic is back on version 1; the rollback moved the alias from 2 back to 1.
    assert alias(lam) == ("1", {})
    info = events(cd, rollback_id)["lambdaFunctionInfo"]
    assert (info["currentVersion"], info["targetVersion"], info["targetVersionWeight"]) == ("2", "1", 1.0)


def test_a_linear_configuration_moves_traffic_in_steps(platform, moto):
    server, cd, lam = platform
    cd.create_deployment_config(deploymentConfigName="Linear50PercentEveryMinute", computePlatform="Lambda",
                                trafficRoutingConfig={"type": "TimeBasedLinear", "timeBasedLinear": {
                                    "linearPercentage": 50, "linearInterval": 1}})
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live", revision=appspec(False),
                                         deploymentConfigName="Linear50PercentEveryMinute")["deploymentId"]
    # Half at once, the other half a minute later.
    assert wait_for(lambda: alias(lam) == ("1", {"2": 0.5}), timeout=30, message="50 % on version 2")
    assert events(cd, deployment_id)["lambdaFunctionInfo"]["targetVersionWeight"] == 0.5
    assert wait_for_status(cd, deployment_id, timeout=120)["status"] == "Succeeded"
    assert alias(lam) == ("2", {})
    assert events(cd, deployment_id)["lambdaFunctionInfo"]["targetVersionWeight"] == 1.0


def test_an_appspec_object_in_s3_is_read_at_create_deployment(platform, tmp_path):
    server, cd, lam = platform
    assert server.aws("s3", "mb", "s3://specs").ok
    good = tmp_path / "appspec.yaml"
    good.write_text(appspec(hooks=False)["appSpecContent"]["content"])
    assert server.aws("s3", "cp", str(good), "s3://specs/app/appspec.yaml").ok
    made = server.aws("deploy", "create-deployment", "--application-name", "app", "--deployment-group-name", "live",
                      "--s3-location", "bucket=specs,key=app/appspec.yaml,bundleType=YAML")
    assert made.ok, made.stderr
    assert wait_for_status(cd, made.json["deploymentId"])["status"] == "Succeeded"
    assert alias(lam) == ("2", {})

    # What is wrong with an object is said at once, and no deployment is made.
    bad = tmp_path / "appspec.json"
    bad.write_text('{"version": 0.0, "Resources": [{"app": {"Type": "AWS::Lambda::Function", "Properties": '
                   '{"Name": "app", "Alias": "live", "CurrentVersion": "2"}}}]}')
    assert server.aws("s3", "cp", str(bad), "s3://specs/app/appspec.json").ok
    for location, expected in [("key=app/appspec.json,bundleType=JSON", "TargetVersion"),
                               ("key=app/missing.yaml,bundleType=YAML", "app/missing.yaml"),
                               ("key=app/appspec.yaml,bundleType=YAML,eTag=0123456789abcdef", "ETag")]:
        refused = server.aws("deploy", "create-deployment", "--application-name", "app", "--deployment-group-name",
                             "live", "--s3-location", f"bucket=specs,{location}")
        assert not refused.ok and "InvalidRevisionException" in refused.stderr, refused.stderr
        assert expected in refused.stderr, refused.stderr
    assert len(cd.list_deployments(applicationName="app", deploymentGroupName="live")["deployments"]) == 1


def test_an_alarm_during_the_canary_stops_it_and_the_rollback_restores_the_alias(moto, landfall_factory, tmp_path):
    backend, prometheus = Backend(), Prometheus(tmp_path)
    try:
        server = landfall_factory(start=False)
        server.start("--prometheus-url", prometheus.url, "--alarm-poll-interval", "1", env=moto.server_env())
        prometheus.start([("backend", backend.address, "/metrics", None)])
        prometheus.wait_up("backend")
        created = server.landfall("alarm", "create", "fn-errors", "--query", "sum(test_errors_total)",
                                  "--threshold", "0")
        assert created.ok, created.stderr
        server, cd, lam = prepare(
            server, moto,
            alarmConfiguration={"enabled": True, "alarms": [{"name": "fn-errors"}]},
            autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]})
        canary_config(cd)
        deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                             revision=appspec(hooks=False),
                                             deploymentConfigName="Canary10Percent1Minute")["deploymentId"]
        wait_for(lambda: alias(lam) == ("1", {"2": 0.1}), timeout=30, message="the canary's weight")
        backend.errors = 2
        stopped = wait_for_status(cd, deployment_id, timeout=30)
        assert (stopped["status"], stopped["errorInformation"]["code"]) == ("Stopped", "ALARM_ACTIVE"), stopped
        rollback = wait_for_status(cd, stopped["rollbackInfo"]["rollbackDeploymentId"], timeout=30)
        assert (rollback["status"], rollback["creator"]) == ("Succeeded", "codeDeployRollback"), rollback
        assert alias(lam) == ("1", {})
    finally:
        prometheus.stop()
        backend.stop()


def test_calls_are_made_as_the_service_role_when_the_server_assumes_it(moto, landfall_factory):
    server = landfall_factory(start=False)
    server.start("--aws-assume-service-role", env=moto.server_env())
    server, cd, lam = prepare(server, moto)
    for _ in range(2):
        deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                             revision=appspec(hooks=False))["deploymentId"]
        assert wait_for_status(cd, deployment_id)["status"] == "Succeeded"
    assert alias(lam) == ("2", {})
    requests = moto.requests()
    assumed = [r for r in requests if "Action=AssumeRole" in r["body"]]
    # Once for both deployments (kept until shortly before it expires), with the server's own key.
    assert len(assumed) == 1, assumed
    assert urllib.parse.parse_qs(assumed[0]["body"])["RoleArn"] == [ROLE]
    assert f"Credential={Moto.ACCESS_KEY}/" in assumed[0]["headers"]["Authorization"]
    # Everything Landfall asked of Lambda was signed with the role's temporary credentials.
    by_landfall = [r for r in requests if not r["headers"].get("User-Agent", "").startswith(("Boto3", "aws-cli"))]
    alias_calls = [r for r in by_landfall if "/aliases/live" in r["url"]]
    assert len(alias_calls) >= 4, [r["url"] for r in by_landfall]
    for call in alias_calls:
        assert f"Credential={Moto.ACCESS_KEY}/" not in call["headers"]["Authorization"], call["headers"]
        assert call["headers"].get("X-Amz-Security-Token"), call["headers"]


def test_a_hook_that_never_reports_fails_after_the_event_timeout(moto, landfall_factory):
    server = landfall_factory(start=False)
    server.start("--event-timeout", "3", env=moto.server_env())
    server, cd, lam = prepare(server, moto)
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                         revision=appspec())["deploymentId"]
    hook_call(moto, "CodeDeployHook_pre", deployment_id)
    info = wait_for_status(cd, deployment_id, timeout=30)
    assert info["status"] == "Failed", info
    before = events(cd, deployment_id)["lifecycleEvents"][0]
    assert before["status"] == "Failed", before
    assert before["diagnostics"]["message"] == "The hook did not report its status within 3 seconds.", before
    assert alias(lam) == ("1", {})


def test_a_hook_reporting_failed_after_the_shift_rolls_the_alias_back_to_current_version(moto, landfall_factory):
    server = landfall_factory(start=False)
    server.start(env=moto.server_env())
    server, cd, lam = prepare(server, moto,
                              autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="live",
                                         revision=appspec())["deploymentId"]
    before = hook_call(moto, "CodeDeployHook_pre", deployment_id)
    cd.put_lifecycle_event_hook_execution_status(deploymentId=deployment_id, lifecycleEventHookExecutionId=before,
                                                 status="Succeeded")
    after = hook_call(moto, "CodeDeployHook_post", deployment_id)
    assert alias(lam) == ("2", {})
    reported = server.aws("deploy", "put-lifecycle-event-hook-execution-status", "--deployment-id", deployment_id,
                          "--lifecycle-event-hook-execution-id", after, "--status", "Failed")
    assert reported.ok, reported.stderr
    failed = wait_for_status(cd, deployment_id)
    assert (failed["status"], failed["errorInformation"]["code"]) == ("Failed", "HOOK_EXECUTION_FAILURE"), failed
    assert failed["errorInformation"]["message"] == "The AfterAllowTraffic lifecycle event failed: The hook reported Failed."
    rollback = wait_for_status(cd, failed["rollbackInfo"]["rollbackDeploymentId"])
    assert (rollback["status"], rollback["creator"]) == ("Succeeded", "codeDeployRollback"), rollback
    # Back on the AppSpec's CurrentVersion; the rollback ran no hooks.
    assert alias(lam) == ("1", {})
    assert len(moto.invocations("CodeDeployHook_pre")) == len(moto.invocations("CodeDeployHook_post")) == 1
