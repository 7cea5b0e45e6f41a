"""`landfall agent` against a real `landfall server`: an instance registered with `landfall instance
register`, its agent started from the files that wrote, revisions uploaded with `aws s3 cp` into the
server's bundle store and deployed with `aws deploy create-deployment`. Hook scripts really run on
this machine (files go under the test's own directory)."""

import subprocess
import time

from conftest import LANDFALL_BIN
from hostsim import wait_for, wait_for_status
from realhost import AGENT_ENV_SECRETS, SLIM_AGENT, bundle

EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"]
HOOKS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]


def hook_script(trace, version, extra=""):
    return (
        "#!/bin/sh\n"
        f'echo "$LIFECYCLE_EVENT {version} $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME '
        f'$DEPLOYMENT_GROUP_ID $BUNDLE_BUCKET $BUNDLE_KEY" >> {trace}\n'
        f"env > {trace}.$LIFECYCLE_EVENT.env\n"
        f"{extra}"
    )


def revision(workdir, name, version, www, trace, extra_hooks=None):
    scripts = {f"scripts/{event}.sh": (hook_script(trace, version), 0o755) for event in HOOKS}
    # Far more output than the 2 KB failure tail: the server keeps all of it.
    scripts["scripts/AfterInstall.sh"] = (
        hook_script(trace, version, 'i=0; while [ $i -lt 2000 ]; do echo "line $i of the after-install output"; i=$((i+1)); done\n'
                    "echo to-stderr >&2\n"),
        0o755,
    )
    scripts.update(extra_hooks or {})
    hooks = "".join(f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: 60\n" for event in HOOKS)
    appspec = f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {www}\nhooks:\n{hooks}"
    files = {"appspec.yml": (appspec, 0o644), "site/index.html": (f"<h1>{version}</h1>\n", 0o644), **scripts}
    return bundle(workdir / name, files)


def upload_and_deploy(server, path, key, bundle_type="tgz"):
    result = server.aws("s3", "cp", str(path), f"s3://bundles/{key}")
    assert result.ok, result.stderr
    result = server.aws(
        "deploy", "create-deployment", "--application-name", "app", "--deployment-group-name", "dg",
        "--s3-location", f"bucket=bundles,key={key},bundleType={bundle_type}",
    )
    assert result.ok, result.stderr
    return result.json["deploymentId"]


def lifecycle(cd, deployment_id, instance):
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId=instance)["deploymentTarget"]["instanceTarget"]
    return {event["lifecycleEventName"]: event for event in target["lifecycleEvents"]}


def streamed_output(server, deployment_id, instance, event):
    """What the agent streamed for one lifecycle event, read back through Landfall's API."""
    status, body = server.raw("Landfall_20261122.GetLifecycleEventLog",
                              {"deploymentId": deployment_id, "targetId": instance, "lifecycleEventName": event})
    assert status == 200, body
    assert body["complete"] is True
    return body["log"]


def group_setup(cd):
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="dg", serviceRoleArn="arn:aws:iam::123456789012:role/landfall",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    return cd.get_deployment_group(applicationName="app", deploymentGroupName="dg")["deploymentGroupInfo"]["deploymentGroupId"]


def test_agent_deploys_revisions_from_the_bundle_store(server, cd, hosts):
    host = hosts("web1")
    group_id = group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    www, trace = server.workdir / "www", server.workdir / "trace"

    first = upload_and_deploy(server, revision(server.workdir, "v1.tgz", "v1", www, trace), "app-v1.tgz")
    info = wait_for_status(cd, first, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log())
    events = lifecycle(cd, first, "web1")
    assert list(events) == EVENTS
    assert {event["status"] for event in events.values()} == {"Succeeded"}

    # Files in place; hooks ran in order with the deployment's variables (ApplicationStop had no
    # earlier revision to run).
    assert (www / "index.html").read_text() == "<h1>v1</h1>\n"
    lines = trace.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
    assert lines[0].split()[1:] == ["v1", first, "app", "dg", group_id, "bundles", "app-v1.tgz"]
    environment = (server.workdir / "trace.AfterInstall.env").read_text()
    for secret in [*AGENT_ENV_SECRETS.values(), *host.key]:
        assert secret not in environment, f"{secret} leaked into a hook's environment"
    assert "AWS_ACCESS_KEY" not in environment and "AWS_SECRET" not in environment

    # The on-host layout of the official agent.
    root = host.dir / "root"
    deployment_dir = root / group_id / first
    assert (deployment_dir / "bundle.tar").is_file()
    assert (deployment_dir / "deployment-archive" / "appspec.yml").is_file()
    assert "line 1999 of the after-install output" in (deployment_dir / "logs" / "scripts.log").read_text()
    instructions = root / "deployment-instructions"
    assert (instructions / f"{group_id}_last_successful_install").read_text().strip() == str(deployment_dir)
    assert (instructions / f"{group_id}_most_recent_install").read_text().strip() == str(deployment_dir)
    assert str(www / "index.html") in (instructions / f"{group_id}-cleanup").read_text()
    assert not list((root / "ongoing-deployment").iterdir())

    # The whole output reached the server, not just a tail.
    output = streamed_output(server, first, "web1", "AfterInstall")
    assert output.startswith("LifecycleEvent - AfterInstall\nScript - scripts/AfterInstall.sh\n"), output[:200]
    assert output.count("of the after-install output\n") == 2000
    assert "[stdout]line 1999 of the after-install output\n" in output and "[stderr]to-stderr\n" in output

    # The next revision: ApplicationStop runs the previous revision's script, with this
    # deployment's id; the previous files are cleaned up (no DISALLOW conflict).
    second = upload_and_deploy(server, revision(server.workdir, "v2.tgz", "v2", www, trace), "app-v2.tgz")
    info = wait_for_status(cd, second, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log())
    lines = trace.read_text().splitlines()[4:]
    assert lines[0].split()[:3] == ["ApplicationStop", "v1", second]
    assert lines[1].split()[:3] == ["BeforeInstall", "v2", second]
    assert (www / "index.html").read_text() == "<h1>v2</h1>\n"
    assert streamed_output(server, second, "web1", "ApplicationStop").startswith("LifecycleEvent - ApplicationStop\n")

    # A failing script: the deployment fails with the script's diagnostics.
    failing = {"scripts/ValidateService.sh": ("#!/bin/sh\necho checking the service\necho it is down >&2\nexit 3\n", 0o755)}
    third = upload_and_deploy(server, revision(server.workdir, "v3.tgz", "v3", www, trace, failing), "app-v3.tgz")
    info = wait_for_status(cd, third, timeout=90)
    assert info["status"] == "Failed", info
    validate = lifecycle(cd, third, "web1")["ValidateService"]
    assert validate["status"] == "Failed"
    diagnostics = validate["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed"
    assert diagnostics["scriptName"] == "scripts/ValidateService.sh"
    assert diagnostics["message"] == "Script at specified location: scripts/ValidateService.sh failed with exit code 3"
    assert "[stdout]checking the service\n" in diagnostics["logTail"] and "[stderr]it is down\n" in diagnostics["logTail"]


def test_an_agent_restarted_mid_script_fails_that_event_at_once(server, cd, hosts):
    host = hosts("web1")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    www, trace = server.workdir / "www", server.workdir / "trace"
    started = server.workdir / "started.pid"
    slow = {"scripts/ApplicationStart.sh": (f"#!/bin/sh\necho $$ > {started}\nexec sleep 300\n", 0o755)}
    deployment_id = upload_and_deploy(server, revision(server.workdir, "slow.tgz", "v1", www, trace, slow), "slow.tgz")
    wait_for(lambda: started.exists() and started.read_text().strip(), timeout=60, message="ApplicationStart to start")
    host.kill()
    try:
        # The official agent's tracking file, and beside it (hidden) the scripts running now.
        tracking = sorted(path.name for path in (host.dir / "root" / "ongoing-deployment").iterdir())
        assert tracking == [f".{deployment_id}.processes", deployment_id]
        started_at = time.monotonic()
        host.start()
        info = wait_for_status(cd, deployment_id, timeout=60)
        # Reported at the agent's start, not after the server's own event timeout.
        assert time.monotonic() - started_at < 30
        assert info["status"] == "Failed", info
        event = lifecycle(cd, deployment_id, "web1")["ApplicationStart"]
        assert event["diagnostics"]["message"] == "Failed: Failing in-progress lifecycle event after an agent restart."
        assert not list((host.dir / "root" / "ongoing-deployment").iterdir())
    finally:
        # The script the killed agent left running.
        pid = started.read_text().strip()
        if pid:
            subprocess.run(["kill", pid], check=False)


def test_an_agent_key_reaches_only_its_own_instances_commands(server, cd, hosts):
    web1 = hosts("web1", start=False, role="web")
    db1 = hosts("db1", start=False, role="db")
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="db", serviceRoleArn="arn:aws:iam::123456789012:role/landfall",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "db", "Type": "KEY_AND_VALUE"}],
    )
    cd.create_deployment(
        applicationName="app", deploymentGroupName="db",
        revision={"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": "db.tgz", "bundleType": "tgz"}},
    )
    # web1's key, asking as db1: refused.
    status, body = web1.call("PollHostCommand", {"HostIdentifier": db1.arn})
    assert status == 400 and "is not this agent's instance" in body["message"], body
    # db1 gets its command; web1 cannot read its specification nor complete it.
    status, body = db1.call("PollHostCommand", {"HostIdentifier": db1.arn})
    assert status == 200 and body["HostCommand"]["CommandName"] == "ApplicationStop", body
    command = body["HostCommand"]
    status, body = web1.call(
        "GetDeploymentSpecification", {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": web1.arn}
    )
    assert status == 400 and "No host command" in body["message"], body
    status, body = web1.call(
        "PutHostCommandComplete",
        {"HostCommandIdentifier": command["HostCommandIdentifier"], "CommandStatus": "Succeeded",
         "Diagnostics": {"Format": "JSON", "Payload": "{}"}},
    )
    assert status == 400 and "No host command" in body["message"], body
    # db1's own key still can.
    status, body = db1.call(
        "GetDeploymentSpecification", {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": db1.arn}
    )
    assert status == 200 and body["DeploymentSpecification"]["GenericEnvelope"]["Format"] == "PKCS7/JSON", body


def test_a_bad_configuration_exits_2_naming_the_file_and_key(server, hosts):
    host = hosts("web1", start=False)
    missing = subprocess.run([LANDFALL_BIN, "agent", "--config", str(host.dir / "nope.yml")], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2, missing.stderr
    assert "nope.yml: cannot be read" in missing.stderr
    text = host.config.read_text().replace(":max_revisions: 5", ":max_revisions: 0")
    host.config.write_text(text)
    bad = subprocess.run([LANDFALL_BIN, "agent", "--config", str(host.config)], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2, bad.stderr
    assert "codedeployagent.yml:9: max_revisions: must be a whole number of at least 1, not 0" in bad.stderr


def test_one_agent_per_host_and_a_clean_stop(server, hosts):
    host = hosts("web1")
    wait_for(lambda: "agent started" in host.log(), timeout=30, message="the agent to start")
    # A second agent on the same host (same pid file) refuses to start.
    second = subprocess.run([LANDFALL_BIN, "agent", "--config", str(host.config)], capture_output=True, text=True,
                            timeout=30, env=server._clean_env())
    assert second.returncode == 1 and "another agent" in second.stderr, second.stderr
    # SIGTERM while idle: the long poll is dropped and the agent exits at once, cleanly.
    started = time.monotonic()
    assert host.stop() == 0
    assert time.monotonic() - started < 10
    assert "the agent stopped polling" in host.log()


def test_the_slim_agent_binary_deploys_as_landfall_agent_does(server, cd, hosts):
    version = subprocess.run([SLIM_AGENT, "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("landfall-agent "), version
    landfall_version = server.landfall("--version")
    assert version.stdout.split()[1] == landfall_version.stdout.split()[1], (version.stdout, landfall_version.stdout)
    usage = subprocess.run([SLIM_AGENT, "start"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and 'unexpected argument "start"' in usage.stderr, usage

    host = hosts("web1", start=False).start(agent=(SLIM_AGENT,))
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    www, trace = server.workdir / "www", server.workdir / "trace"
    first = upload_and_deploy(server, revision(server.workdir, "v1.tgz", "v1", www, trace), "app-v1.tgz")
    info = wait_for_status(cd, first, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log())
    assert (www / "index.html").read_text() == "<h1>v1</h1>\n"
    lines = trace.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
    # Its log, as LANDFALL_LOG asks (info, debug for the agent's own lines).
    log = host.log()
    assert "agent started" in log and "lifecycle event succeeded" in log, log[-2000:]
    # A configuration error is a usage error, as with `landfall agent`.
    missing = subprocess.run([SLIM_AGENT, "--config", str(host.dir / "nope.yml")], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "nope.yml: cannot be read" in missing.stderr, missing.stderr

