"""The `landfall` client as people use it: `deploy --wait` read from a pseudo-terminal, and every
command's JSON output parsed as a script would, against a server with real agents."""

import os
import pty
import select
import subprocess
import time
import uuid

import pytest

from conftest import LANDFALL_BIN

SERVICE_ROLE = "arn:aws:iam::123456789012:role/landfall"


def write_app(path, destination, version, fail_validate=False, slow_start=0):
    """An application directory: a page, and hooks that say what they do."""
    (path / "site").mkdir(parents=True, exist_ok=True)
    (path / "scripts").mkdir(exist_ok=True)
    (path / "appspec.yml").write_text(
        "version: 0.0\nos: linux\n"
        f"files:\n  - source: site\n    destination: {destination}\n"
        # The hosts share this machine, so they share the destination.
        "file_exists_behavior: OVERWRITE\n"
        "hooks:\n"
        "  ApplicationStart:\n    - location: scripts/start.sh\n"
        "  ValidateService:\n    - location: scripts/validate.sh\n"
    )
    (path / "site" / "index.html").write_text(f"{version}\n")
    start = path / "scripts" / "start.sh"
    start.write_text(f"#!/bin/sh\necho starting {version}\nsleep {slow_start}\necho started {version}\n")
    validate = path / "scripts" / "validate.sh"
    body = 'echo "validation of {v} failed: port 8080 refused" >&2\nexit 3\n' if fail_validate else "exit 0\n"
    validate.write_text("#!/bin/sh\necho validating {v}\n".format(v=version) + body.format(v=version))
    start.chmod(0o755)
    validate.chmod(0o755)
    return path


def in_pty(server, *args, timeout=120):
    """Runs `landfall ARGS` on a pseudo-terminal; returns (exit code, everything it showed)."""
    main, secondary = pty.openpty()
    process = subprocess.Popen([LANDFALL_BIN, *args], stdin=secondary, stdout=secondary, stderr=secondary,
                               env={**server.env(), "TERM": "xterm", "COLUMNS": "120"}, close_fds=True)
    os.close(secondary)
    shown = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(main)
    return process.wait(timeout=10), shown.decode(errors="replace")


@pytest.fixture
def fleet(server, hosts, tmp_path):
    """Two real hosts in group shop/web."""
    for name in ("web-1", "web-2"):
        hosts(name, role="web")
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    assert server.aws("deploy", "create-deployment-group", "--application-name", "shop",
                      "--deployment-group-name", "web", "--service-role-arn", SERVICE_ROLE,
                      "--deployment-config-name", "CodeDeployDefault.AllAtOnce",
                      "--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE").ok
    return tmp_path


def test_deploy_live_view_on_a_terminal(server, fleet):
    www = fleet / f"www-{uuid.uuid4().hex[:6]}"
    app = write_app(fleet / "app", www, "v1", slow_start=1)
    code, shown = in_pty(server, "deploy", "--app", "shop", "--group", "web", str(app), "--wait")
    assert code == 0, shown
    # The upload's progress bar, then the live block, redrawn in place.
    assert "100%" in shown and "pushed s3://landfall-revisions/shop/" in shown, shown
    assert "\x1b[J" in shown, "the block is redrawn in place"
    assert "ApplicationStart (" in shown, "a host's running event is shown with its time so far"
    assert "0/2 hosts done" in shown and "2/2 hosts done" in shown, shown
    final = shown.rsplit("hosts done", 1)[1]
    assert "web-1" in final and "web-2" in final and "Succeeded" in final, final
    assert "(2 hosts: 2 succeeded)" in shown, shown
    assert (www / "index.html").read_text() == "v1\n"

    # A failing host: the failure and its script's output appear the moment it happens, and
    # the command exits 1.
    broken = write_app(fleet / "broken", www, "v2", fail_validate=True)
    code, shown = in_pty(server, "deploy", "--app", "shop", "--group", "web", str(broken), "--wait")
    assert code == 1, shown
    assert "failed ValidateService: ScriptFailed: Script at specified location: scripts/validate.sh failed with exit code 3" in shown, shown
    assert "| [stderr]validation of v2 failed: port 8080 refused" in shown, shown
    assert "HEALTH_CONSTRAINTS" in shown, shown


def test_every_command_speaks_json(server, fleet):
    www = fleet / f"www-{uuid.uuid4().hex[:6]}"
    v1 = write_app(fleet / "v1", www, "v1")
    pushed = server.landfall("push", "--app", "shop", str(v1), "--output", "json")
    assert pushed.ok, pushed.stderr
    revision = pushed.json
    assert revision["bucket"] == "landfall-revisions" and revision["key"].startswith("shop/") and revision["eTag"]
    listed = server.client().list_application_revisions(applicationName="shop")["revisions"]
    assert listed[0]["s3Location"]["key"] == revision["key"]

    # Deploy the pushed revision and wait: one JSON document, exit 0.
    deployed = server.landfall("deploy", "--app", "shop", "--group", "web", "--revision",
                               f"s3://{revision['bucket']}/{revision['key']}", "--wait", "--output", "json")
    assert deployed.ok, deployed.stdout + deployed.stderr
    first = deployed.json["deployment"]
    assert first["status"] == "Succeeded"
    assert sorted(t["targetId"] for t in deployed.json["targets"]) == ["web-1", "web-2"]
    first_id = first["deploymentId"]

    status = server.landfall("status", first_id, "--output", "json")
    assert status.ok and status.json["deployment"]["deploymentId"] == first_id
    latest = server.landfall("status", "--app", "shop", "--group", "web", "--output", "json")
    assert latest.ok and [d["deploymentId"] for d in latest.json] == [first_id]

    logs = server.landfall("logs", first_id, "--host", "web-2", "--output", "json")
    assert logs.ok, logs.stderr
    entries = {entry["event"]: entry for entry in logs.json}
    assert all(entry["host"] == "web-2" for entry in logs.json)
    assert "[stdout]starting v1" in entries["ApplicationStart"]["log"], entries
    assert entries["ApplicationStart"]["status"] == "Succeeded"

    instances = server.landfall("instances", "--output", "json")
    assert instances.ok
    seen = {host["instanceName"]: host for host in instances.json}
    assert set(seen) == {"web-1", "web-2"}
    assert seen["web-1"]["tags"] == [{"Key": "role", "Value": "web"}]
    assert seen["web-1"]["agent"]["agentVersion"].startswith("landfall-agent/")
    assert abs(seen["web-1"]["agent"]["lastSeen"] - time.time()) < 120

    # A second revision, then roll back to the first: the files come back.
    v2 = write_app(fleet / "v2", www, "v2")
    second = server.landfall("deploy", "--app", "shop", "--group", "web", str(v2), "--wait", "--output", "json")
    assert second.ok and second.json["deployment"]["status"] == "Succeeded"
    assert (www / "index.html").read_text() == "v2\n"
    rolled = server.landfall("rollback", "--app", "shop", "--group", "web", "--wait", "--output", "json")
    assert rolled.ok, rolled.stdout + rolled.stderr
    assert rolled.json["deployment"]["revision"]["s3Location"]["key"] == revision["key"]
    assert (www / "index.html").read_text() == "v1\n"

    # A deployment that fails exits 1, still with its JSON.
    bad = write_app(fleet / "bad", www, "v3", fail_validate=True)
    failed = server.landfall("deploy", "--app", "shop", "--group", "web", str(bad), "--wait", "--output", "json")
    assert failed.returncode == 1
    assert failed.json["deployment"]["status"] == "Failed"


def test_logs_follow_and_stop(server, fleet):
    www = fleet / f"www-{uuid.uuid4().hex[:6]}"
    app = write_app(fleet / "slow", www, "slow", slow_start=3)
    created = server.landfall("deploy", "--app", "shop", "--group", "web", str(app), "--output", "json")
    assert created.ok, created.stderr
    deployment_id = created.json["deploymentId"]
    follower = subprocess.Popen([LANDFALL_BIN, "logs", deployment_id, "--event", "ApplicationStart", "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env())
    # Wait until both hosts are inside the slow hook, then stop the deployment.
    cd = server.client()
    deadline = time.time() + 60
    while time.time() < deadline:
        targets = server.landfall("status", deployment_id, "--output", "json").json["targets"]
        events = [e for t in targets for e in t["lifecycleEvents"] if e["lifecycleEventName"] == "ApplicationStart"]
        if len(events) == 2 and all(e["status"] == "InProgress" for e in events):
            break
        time.sleep(0.2)
    stopped = server.landfall("stop", deployment_id)
    assert stopped.ok and stopped.stdout.startswith(deployment_id), stopped.stdout + stopped.stderr
    out, err = follower.communicate(timeout=90)
    assert follower.returncode == 0, err
    # Both hosts' output, each under its header, printed as it came.
    assert "==> web-1 ApplicationStart <==" in out and "==> web-2 ApplicationStart <==" in out, out
    assert out.count("[stdout]starting slow") == 2 and out.count("[stdout]started slow") == 2, out
    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "Stopped"
    code = server.landfall("status", deployment_id)
    assert code.returncode == 1 and "Stopped" in code.stdout


def test_usage_errors_help_and_completions(server):
    missing = server.landfall("deploy", "--app", "shop", "--group", "web", "/nonexistent/dir")
    assert missing.returncode == 2 and "/nonexistent/dir is not a directory" in missing.stderr
    bad = server.landfall("deploy", "--app", "shop", "--group", "web", "--revision", "s3://bucket")
    assert bad.returncode == 2 and "s3://BUCKET/KEY" in bad.stderr
    unknown = server.landfall("status", "d-NOSUCH000")
    assert unknown.returncode == 2 and "DeploymentDoesNotExistException" in unknown.stderr
    helped = server.landfall("deploy", "--help")
    assert helped.ok and "Examples:" in helped.stdout and "--wait" in helped.stdout
    completion = server.landfall("completions", "bash")
    assert completion.ok and "landfall" in completion.stdout and "rollback" in completion.stdout
    git = server.landfall("deploy", "--app", "shop", "--group", "web", "--revision", "github:team/app@main")
    assert git.returncode == 2 and "is not a full commit hash" in git.stderr, git.stderr


def test_push_checks_the_appspec_first(server, tmp_path):
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    app = tmp_path / "app"
    app.mkdir()
    (app / "appspec.yml").write_text("version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n")
    pushed = server.landfall("push", "--app", "shop", str(app))
    assert pushed.ok, pushed.stderr
    assert "appspec.yml:4:3: warning:" in pushed.stderr and "AfterInstal" in pushed.stderr, pushed.stderr
    (app / "appspec.yml").write_text("version: 0.0\nos: windows-ish\n")
    invalid = server.landfall("push", "--app", "shop", str(app))
    assert invalid.returncode == 2 and "appspec.yml:2:5: error:" in invalid.stderr, invalid.stderr


def test_keys_in_json_and_a_closed_pipe(server):
    created = server.landfall("keys", "create", "--role", "read-only", "--output", "json")
    assert created.ok, created.stderr
    key = created.json["accessKey"]
    assert key["role"] == "read-only" and key["secretAccessKey"]
    listed = server.landfall("keys", "list", "--output", "json")
    assert key["accessKeyId"] in {k["accessKeyId"] for k in listed.json}
    assert all("secretAccessKey" not in k for k in listed.json)
    profile = server.landfall("keys", "create", "--role", "deployer", "--as-profile", "ci")
    assert profile.ok and profile.stdout.startswith("[ci]\n") and "region = us-east-1" in profile.stdout
    # A reader that stops early ends the command quietly.
    piped = subprocess.run(f"{LANDFALL_BIN} keys list | head -c 10", shell=True, capture_output=True, text=True,
                           env=server.env())
    assert piped.stderr == "", piped.stderr


def test_deploy_wait_summarises_a_large_fleet(server):
    """Past a screenful of hosts, `deploy --wait` follows the deployment's timeline instead of
    reading every host at every poll, and prints counts, not a line per host event: summary
    lines when the output is piped, a block with counts per lifecycle event on a terminal.
    Failures are still reported the moment they happen."""
    from hostsim import SimHost

    hosts = [SimHost(server, f"big-{i:02}", tags=[("fleet", "big")]) for i in range(40)]
    hosts[7].outcomes["ValidateService"] = "fail"
    for host in hosts:
        host.delay = 0.05
        host.start()
    cd = server.client()
    cd.create_application(applicationName="big")
    cd.create_deployment_group(applicationName="big", deploymentGroupName="all", serviceRoleArn=SERVICE_ROLE,
                               deploymentConfigName="CodeDeployDefault.AllAtOnce",
                               onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "big", "Type": "KEY_AND_VALUE"}])
    try:
        piped = server.landfall("deploy", "--app", "big", "--group", "all", "--revision", "s3://bundles/big/v1.tgz",
                                "--wait")
        lines = piped.stdout.splitlines()
        # The failed host's report, and counts: no host's lifecycle events line by line.
        assert "failed ValidateService" in piped.stdout and "big-07" in piped.stdout, piped.stdout
        per_host = [line for line in lines if "big-" in line and "big-07" not in line]
        assert per_host == [], per_host
        progress = [line for line in lines if "hosts done" in line]
        assert progress and len(progress) < 60, lines
        assert "40/40 hosts done, 1 failed" in progress[-1], progress
        assert "(40 hosts: 39 succeeded, 1 failed)" in piped.stdout, piped.stdout

        code, shown = in_pty(server, "deploy", "--app", "big", "--group", "all", "--revision",
                             "s3://bundles/big/v2.tgz", "--wait")
        assert "running: " in shown and "hosts done" in shown, shown
        assert "\x1b[J" in shown, "the block is redrawn in place"
        assert "(40 hosts: 39 succeeded, 1 failed)" in shown, shown
    finally:
        for host in hosts:
            host.stop()
