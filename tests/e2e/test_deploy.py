"""A fleet of real hosts (five `landfall agent` processes on this machine) deployed to with the
stock aws CLI: files, permissions and owners in place, hooks in order with their environment, and
a failing host rolled back to the previous revision's files."""

import grp
import os
import pwd
import uuid

from hostsim import wait_for, wait_for_status
from realhost import bundle

HOOKS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
IN_PLACE = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
            "ValidateService"]
NOGROUP = "nogroup" if "nogroup" in {g.gr_name for g in grp.getgrall()} else "nobody"


def revision(workdir, version, destination, traces):
    """A bundle whose hooks append `host event version deployment` to the host's trace file, and
    whose ValidateService fails on the host named in the agent's FAIL_VERSION_ON for this version."""
    hook = (
        "#!/bin/sh\n"
        f'echo "$TEST_HOST $LIFECYCLE_EVENT {version} $DEPLOYMENT_ID $DEPLOYMENT_GROUP_NAME $APPLICATION_NAME" '
        f'>> {traces}/$TEST_HOST\n'
    )
    validate = hook + f'[ "$FAIL_VERSION_ON" = "{version}" ] && {{ echo "{version} is broken here" >&2; exit 1; }}\nexit 0\n'
    scripts = {f"scripts/{event}.sh": (validate if event == "ValidateService" else hook, 0o755) for event in HOOKS}
    hooks = "".join(f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: 60\n" for event in HOOKS)
    appspec = (
        "version: 0.0\nos: linux\n"
        # The five hosts share this machine, so they share the destination: the last one wins.
        "file_exists_behavior: OVERWRITE\n"
        f"files:\n  - source: site\n    destination: {destination}\n"
        f"permissions:\n  - object: {destination}\n    pattern: \"**\"\n    owner: nobody\n    group: {NOGROUP}\n"
        "    mode: 640\n    type:\n      - file\n"
        f"hooks:\n{hooks}"
    )
    files = {
        "appspec.yml": (appspec, 0o644),
        "site/index.html": (f"<h1>{version}</h1>\n", 0o644),
        "site/assets/app.js": (f"console.log('{version}');\n", 0o644),
        **scripts,
    }
    return bundle(workdir / f"{version}.tgz", files)


def upload(server, path, key):
    result = server.aws("s3", "cp", str(path), f"s3://bundles/{key}")
    assert result.ok, result.stderr


def deploy(server, key):
    result = server.aws("deploy", "create-deployment", "--application-name", "shop", "--deployment-group-name", "web",
                        "--s3-location", f"bucket=bundles,key={key},bundleType=tgz")
    assert result.ok, result.stderr
    return result.json["deploymentId"]


def traces_of(traces, name):
    path = traces / name
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_five_hosts_then_a_failure_rolled_back(server, cd, hosts, tmp_path):
    destination = tmp_path / f"www-{uuid.uuid4().hex[:8]}"
    traces = tmp_path / "traces"
    traces.mkdir()
    names = [f"web-{i}" for i in range(5)]
    fleet = [hosts(name, start=False, role="web") for name in names]
    for host in fleet:
        # web-2's v2 fails its ValidateService.
        host.start(TEST_HOST=host.name, FAIL_VERSION_ON="v2" if host.name == "web-2" else "")
    assert server.aws("s3", "mb", "s3://bundles").ok
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    created = server.aws(
        "deploy", "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web",
        "--service-role-arn", "arn:aws:iam::123456789012:role/landfall",
        "--deployment-config-name", "CodeDeployDefault.OneAtATime",
        "--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE",
        "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE",
    )
    assert created.ok, created.stderr

    # v1 everywhere.
    upload(server, revision(tmp_path, "v1", destination, traces), "shop/v1.tgz")
    first = deploy(server, "shop/v1.tgz")
    waited = server.aws("deploy", "wait", "deployment-successful", "--deployment-id", first)
    assert waited.ok, (waited.stderr, [h.log()[-2000:] for h in fleet])
    info = cd.get_deployment(deploymentId=first)["deploymentInfo"]
    assert info["deploymentOverview"]["Succeeded"] == 5
    for name in names:
        lines = traces_of(traces, name)
        # ApplicationStop had no earlier revision to run on a fresh host.
        assert [line[1] for line in lines] == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
        assert all(line[2:] == ["v1", first, "web", "shop"] for line in lines), lines
        target = cd.get_deployment_target(deploymentId=first, targetId=name)["deploymentTarget"]["instanceTarget"]
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == IN_PLACE
    # Files in place with the permissions and owners the AppSpec asks for.
    for relative in ("index.html", "assets/app.js"):
        path = destination / relative
        assert path.read_text().startswith(("<h1>v1", "console.log('v1"))
        status = os.stat(path)
        assert (status.st_mode & 0o777, pwd.getpwuid(status.st_uid).pw_name, grp.getgrgid(status.st_gid).gr_name) == (
            0o640, "nobody", NOGROUP)
    # One host at a time, in name order.
    starts = {}
    for name in names:
        target = cd.get_deployment_target(deploymentId=first, targetId=name)["deploymentTarget"]["instanceTarget"]
        events = target["lifecycleEvents"]
        starts[name] = (events[0]["startTime"], events[-1]["endTime"])
    ordered = sorted(names, key=lambda n: starts[n][0])
    assert ordered == names
    for earlier, later in zip(ordered, ordered[1:]):
        assert starts[earlier][1] <= starts[later][0]

    # v2 fails on web-2 (OneAtATime: not the last host), so the deployment fails, web-3 and web-4
    # are never touched, and the rollback puts v1 back on the hosts v2 reached.
    upload(server, revision(tmp_path, "v2", destination, traces), "shop/v2.tgz")
    second = deploy(server, "shop/v2.tgz")
    failed = wait_for_status(cd, second, timeout=120)
    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert failed["deploymentOverview"] == {"Pending": 0, "InProgress": 0, "Succeeded": 2, "Failed": 1, "Skipped": 2,
                                            "Ready": 0}
    broken = cd.get_deployment_target(deploymentId=second, targetId="web-2")["deploymentTarget"]["instanceTarget"]
    validate = broken["lifecycleEvents"][-1]
    assert validate["status"] == "Failed"
    assert validate["diagnostics"]["errorCode"] == "ScriptFailed"
    assert validate["diagnostics"]["scriptName"] == "scripts/ValidateService.sh"
    assert "v2 is broken here" in validate["diagnostics"]["logTail"]
    for untouched in ("web-3", "web-4"):
        assert all(line[2] == "v1" for line in traces_of(traces, untouched))
    rollback_id = wait_for(
        lambda: cd.get_deployment(deploymentId=second)["deploymentInfo"].get("rollbackInfo", {}).get("rollbackDeploymentId"),
        message="the rollback deployment")
    rollback = wait_for_status(cd, rollback_id, timeout=120)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert sorted(cd.list_deployment_targets(deploymentId=rollback_id)["targetIds"]) == ["web-0", "web-1", "web-2"]
    assert (destination / "index.html").read_text() == "<h1>v1</h1>\n"
    for name in ("web-0", "web-1", "web-2"):
        last = traces_of(traces, name)[-1]
        assert last[1:4] == ["ValidateService", "v1", rollback_id]
    # In the rollback, ApplicationStop ran v2's script (the last successful install on web-0 and
    # web-1 was v2's; web-2 failed after its Install, which still counts as installed).
    assert traces_of(traces, "web-0")[-5][1:4] == ["ApplicationStop", "v2", rollback_id]
    group = cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")["deploymentGroupInfo"]
    assert group["lastSuccessfulDeployment"]["deploymentId"] == rollback_id
    assert group["targetRevision"]["s3Location"]["key"] == "shop/v1.tgz"
