"""`landfall local`: a bundle's lifecycle run on this host without a server, as the official
agent's codedeploy-local runs it. The same rules, hook environment, files and logs as a real
deployment, each event's output printed as it comes, and exit codes a CI job can use."""

import os
import re
import subprocess

from conftest import LANDFALL_BIN
from realhost import bundle


def write_tree(root, files):
    for name, (text, mode) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    return root


def revision_files(www, trace, scripts=None):
    hook = (
        "#!/bin/sh\n"
        f'echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME $DEPLOYMENT_GROUP_ID" >> {trace}\n'
        "echo \"hello from $LIFECYCLE_EVENT\"\n"
    )
    appspec = (
        f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {www}\nhooks:\n"
        "  BeforeInstall:\n    - location: scripts/hook.sh\n"
        "  AfterInstall:\n    - location: scripts/hook.sh\n"
        "  ApplicationStart:\n    - location: scripts/hook.sh\n"
        "  ValidateService:\n    - location: scripts/hook.sh\n"
    )
    files = {"appspec.yml": (appspec, 0o644), "site/index.html": ("<h1>local</h1>\n", 0o644),
             "scripts/hook.sh": (hook, 0o755)}
    files.update(scripts or {})
    return files


def local(tmp_path, *args):
    config = tmp_path / "codedeployagent.yml"
    if not config.exists():
        config.write_text(f"---\n:root_dir: '{tmp_path / 'root'}'\n:max_revisions: 2\n")
    return subprocess.run([LANDFALL_BIN, "local", "--agent-configuration-file", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def test_a_directory_bundle_runs_its_lifecycle_locally(tmp_path):
    www, trace = tmp_path / "www", tmp_path / "trace"
    source = write_tree(tmp_path / "my.app", revision_files(www, trace))
    result = local(tmp_path, "--bundle-location", str(source), "--type", "directory")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert out[-1] == "Successfully deployed your bundle locally"
    folder = re.match(r"Starting to execute deployment from within folder (.*)", out[0]).group(1)
    deployment_id = os.path.basename(folder)
    assert re.fullmatch(r"d-[A-Z0-9]{9}-local", deployment_id), deployment_id
    assert folder == str(tmp_path / "root" / "default-local-deployment-group" / deployment_id)
    # Every event in CodeDeploy's order, those without scripts skipped, each hook's output in between.
    events = [line.split(":")[0] for line in out if line.endswith(("skipped (no scripts)", "running"))]
    assert events == ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall",
                      "Install", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic",
                      "AfterAllowTraffic"], out
    assert "[stdout]hello from BeforeInstall" in out and "[stdout]hello from ValidateService" in out
    succeeded = next(i for i, line in enumerate(out) if line.startswith("AfterInstall: succeeded in "))
    assert out.index("AfterInstall: running") < out.index("[stdout]hello from AfterInstall") < succeeded
    # The hooks' environment, as a deployment's; the files in place; the logs where the agent keeps them.
    lines = trace.read_text().splitlines()
    assert lines[0] == f"BeforeInstall {deployment_id} my-app LocalFleet default-local-deployment-group"
    assert [line.split()[0] for line in lines] == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
    assert (www / "index.html").read_text() == "<h1>local</h1>\n"
    scripts_log = (tmp_path / "root" / "default-local-deployment-group" / deployment_id / "logs" / "scripts.log")
    assert "[stdout]hello from ApplicationStart" in scripts_log.read_text()
    deployments_log = tmp_path / "root" / "deployment-logs" / "codedeploy-agent-deployments.log"
    assert "hello from ValidateService" in deployments_log.read_text()

    # Named events run after DownloadBundle and Install; names and the group are the caller's.
    trace.unlink()
    tgz = bundle(tmp_path / "app.tgz", revision_files(www, trace))
    result = local(tmp_path, "-l", str(tgz), "-t", "tgz", "--events", "ApplicationStart,ValidateService",
                   "--deployment-group-name", "web", "--application-name", "shop", "--file-exists-behavior", "OVERWRITE")
    assert result.returncode == 0, result.stdout + result.stderr
    events = [line.split(":")[0] for line in result.stdout.splitlines() if line.endswith("running")]
    assert events == ["DownloadBundle", "Install", "ApplicationStart", "ValidateService"]
    assert [line.split()[0] for line in trace.read_text().splitlines()] == ["ApplicationStart", "ValidateService"]
    assert trace.read_text().split()[2:4] == ["shop", "web"]


def test_a_failing_hook_fails_the_run_with_exit_1_and_stops_there(tmp_path):
    www, trace = tmp_path / "www", tmp_path / "trace"
    failing = {"scripts/fail.sh": ("#!/bin/sh\necho about to fail\nexit 3\n", 0o755)}
    source = write_tree(tmp_path / "bundle", revision_files(www, trace, scripts=failing))
    appspec = source / "appspec.yml"
    appspec.write_text(appspec.read_text().replace(
        "  AfterInstall:\n    - location: scripts/hook.sh\n", "  AfterInstall:\n    - location: scripts/fail.sh\n"))
    result = local(tmp_path, "-l", str(source))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[stdout]about to fail" in result.stdout
    assert "AfterInstall failed" in result.stderr and "scripts/fail.sh" in result.stderr, result.stderr
    assert "ApplicationStart" not in result.stdout
    assert [line.split()[0] for line in trace.read_text().splitlines()] == ["BeforeInstall"]

    # An AppSpec error names its line and column; nothing is installed.
    broken = write_tree(tmp_path / "broken", {"appspec.yml": ("version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n"
                                                              "    - location: x.sh\n      timeout: soon\n", 0o644)})
    result = local(tmp_path, "-l", str(broken))
    assert result.returncode == 1
    assert re.search(r"appspec\.yml:6:\d+", result.stderr), result.stderr


def test_output_is_printed_while_the_hook_runs(tmp_path):
    flag = tmp_path / "go-on"
    waiting = {"scripts/wait.sh": (f"#!/bin/sh\necho waiting\nwhile [ ! -f {flag} ]; do sleep 0.05; done\necho went on\n",
                                   0o755)}
    source = write_tree(tmp_path / "bundle", {
        "appspec.yml": ("version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/wait.sh\n"
                        "      timeout: 60\n", 0o644), **waiting})
    config = tmp_path / "codedeployagent.yml"
    config.write_text(f"---\n:root_dir: '{tmp_path / 'root'}'\n")
    process = subprocess.Popen([LANDFALL_BIN, "local", "-c", str(config), "-l", str(source)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.strip() == "[stdout]waiting":
                break
        # The line came while the hook still waits for the flag.
        assert process.poll() is None
        flag.touch()
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
        assert "[stdout]went on" in rest
    finally:
        if process.poll() is None:
            process.kill()


def test_bad_command_lines_exit_2_and_run_nothing(tmp_path):
    source = write_tree(tmp_path / "bundle", revision_files(tmp_path / "www", tmp_path / "trace"))
    for args, message in [
        (["-l", str(source), "-t", "rar"], "--type rar"),
        (["-l", str(tmp_path / "nope")], "is not a directory"),
        (["-l", str(source), "-t", "tgz"], "is not a file"),
        (["-l", str(source), "-e", "Deploy"], "Deploy is not a lifecycle event"),
        (["-l", str(source), "-b", "CLOBBER"], "DISALLOW, OVERWRITE or RETAIN"),
    ]:
        result = local(tmp_path, *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "trace").exists() and not (tmp_path / "root").exists()
    missing = subprocess.run([LANDFALL_BIN, "local", "-c", str(tmp_path / "none.yml"), "-l", str(source)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "none.yml" in missing.stderr
