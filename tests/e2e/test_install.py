"""One-line install: `curl -fsS SERVER/agent/install.sh | sh -s -- --token TOKEN` on a fresh test
host (a directory of its own given as --root, since the tests cannot install into / or run
systemd), with join tokens made by `landfall instance token create`. The host it installs deploys
a revision; refused tokens, a bad download and a taken name register nothing. Agents older than
the binary the server offers are flagged."""

import os
import pathlib
import re
import stat
import subprocess
import urllib.request

from hostsim import read_simple_yaml, wait_for, wait_for_status
from realhost import AGENT_ENV_SECRETS, SLIM_AGENT, Host
from test_agent import group_setup, revision, upload_and_deploy


def make_token(server, *args):
    result = server.landfall("instance", "token", "create", *args)
    assert result.ok, result.stderr
    token = result.stdout.splitlines()[0]
    assert f"curl -fsS {server.endpoint}/agent/install.sh | sh -s -- --token {token}" in result.stdout, result.stdout
    return token


def token_status(server, token):
    tokens = server.landfall("instance", "token", "list", "--output", "json")
    assert tokens.ok, tokens.stderr
    (found,) = [t for t in tokens.json["joinTokens"] if t["tokenId"] == token.split(".")[0]]
    return found


def install(server, root, *args, script=None):
    """Runs the served install script as a host would, piped into sh."""
    if script is None:
        command = f"curl -fsS {server.endpoint}/agent/install.sh | sh -s -- --root {root} " + " ".join(args)
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120)
    return subprocess.run(["sh", "-s", "--", "--root", str(root), *args], input=script, capture_output=True,
                          text=True, timeout=120)


def registered(cd, name):
    try:
        info = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
    except cd.exceptions.InstanceNotRegisteredException:
        return False
    return "deregisterTime" not in info


def test_a_host_installs_and_registers_itself_with_a_join_token_and_deploys(server, cd):
    token = make_token(server, "--tag", "role=web", "--ttl", "10m")
    assert token_status(server, token)["status"] == "Unused"
    root = server.workdir / "fresh-host"
    result = install(server, root, "--token", token, "--name", "web-joined")
    assert result.returncode == 0, result.stderr
    assert "registered as web-joined" in result.stdout, result.stdout

    # Registered with the token's tags; the token is spent and says by whom.
    info = cd.get_on_premises_instance(instanceName="web-joined")["instanceInfo"]
    assert info["tags"] == [{"Key": "role", "Value": "web"}]
    status = token_status(server, token)
    assert (status["status"], status["instanceName"]) == ("Used", "web-joined")

    # The official layout under the root, the key readable by its owner only, a systemd unit.
    conf = root / "etc/codedeploy-agent/conf"
    agent = root / "usr/local/bin/landfall-agent"
    assert os.access(agent, os.X_OK)
    on_premises = read_simple_yaml(conf / "codedeploy.onpremises.yml")
    assert on_premises["iam_user_arn"].endswith(":user/landfall/web-joined"), on_premises
    assert stat.S_IMODE((conf / "codedeploy.onpremises.yml").stat().st_mode) == 0o600
    # The agent checks what the server signs (specifications, agent updates) against its CA.
    config = (conf / "codedeployagent.yml").read_text()
    assert f":landfall_spec_ca_file: '{conf}/landfall-spec-ca.pem'" in config, config
    ca = (server.data_dir / "spec-signing" / "ca.pem").read_text()
    assert (conf / "landfall-spec-ca.pem").read_text().strip() == ca.strip()
    unit = (root / "etc/systemd/system/landfall-agent.service").read_text()
    assert f"ExecStart={agent} --config {conf}/codedeployagent.yml" in unit, unit
    # Without systemd (a --root install), it says how to start the agent; started so, it deploys.
    start = re.search(r"start the agent with: (.*)", result.stdout).group(1).split()
    assert start == [str(agent), "--config", str(conf / "codedeployagent.yml")], result.stdout
    log = open(server.workdir / "joined-agent.log", "a")
    env = {**server._clean_env(), **AGENT_ENV_SECRETS, "LANDFALL_LOG": "info"}
    process = subprocess.Popen(start, stdout=log, stderr=log, env=env, cwd=root)
    log.close()
    try:
        group_setup(cd)
        assert server.aws("s3", "mb", "s3://bundles").ok
        www, trace = server.workdir / "www", server.workdir / "trace"
        deployment = upload_and_deploy(server, revision(server.workdir, "v1.tgz", "v1", www, trace), "v1.tgz")
        info = wait_for_status(cd, deployment, timeout=90)
        agent_log = (server.workdir / "joined-agent.log").read_text()
        assert info["status"] == "Succeeded", (info, agent_log[-3000:])
        assert info["deploymentOverview"]["Succeeded"] == 1
        assert (www / "index.html").read_text() == "<h1>v1</h1>\n"
        assert (root / "opt/codedeploy-agent/deployment-root").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=30)

    # The same token again is refused, and registers nothing.
    again = install(server, server.workdir / "second-host", "--token", token, "--name", "web-second")
    assert again.returncode == 1
    assert "was used at" in again.stderr and "by instance web-joined" in again.stderr, again.stderr
    assert not registered(cd, "web-second")
    assert not (server.workdir / "second-host" / "etc").exists()


def test_expired_forged_and_refused_joins_register_nothing(server, cd):
    root = server.workdir / "host"
    # A forged token: a made-up secret for a real token's id, and no token at all.
    real = make_token(server, "--tag", "role=web")
    forged = real.split(".")[0] + ".NotTheSecretAtAll"
    for bad in (forged, "jt-nothing.atall"):
        result = install(server, root, "--token", bad, "--name", "web-forged")
        assert result.returncode == 1
        assert "the join token is not valid" in result.stderr, result.stderr
    assert token_status(server, real)["status"] == "Unused"
    assert not registered(cd, "web-forged")

    # An expired token.
    short = make_token(server, "--ttl", "1s")
    wait_for(lambda: token_status(server, short)["status"] == "Expired", timeout=10)
    result = install(server, root, "--token", short, "--name", "web-late")
    assert result.returncode == 1 and "expired at" in result.stderr, result.stderr
    assert not registered(cd, "web-late")

    # A download whose checksum is not the one the script was given: nothing registered, the
    # token still unused.
    with urllib.request.urlopen(server.endpoint + "/agent/install.sh", timeout=10) as response:
        script = response.read().decode()
    tampered = re.sub(r"SHA256='[0-9a-f]{64}'", "SHA256='" + "0" * 64 + "'", script)
    result = install(server, root, "--token", real, "--name", "web-tampered", script=tampered)
    assert result.returncode == 1 and "not installed" in result.stderr, result.stderr
    assert not registered(cd, "web-tampered") and token_status(server, real)["status"] == "Unused"

    # A name already registered: refused, and the token can still be used with another.
    taken = server.landfall("instance", "register", "web-taken", "--agent-config-dir", str(server.workdir / "taken"))
    assert taken.ok, taken.stderr
    result = install(server, root, "--token", real, "--name", "web-taken")
    assert result.returncode == 1 and "InstanceNameAlreadyRegistered" in result.stderr, result.stderr
    assert token_status(server, real)["status"] == "Unused"
    assert not (root / "etc").exists()
    result = install(server, root, "--token", real, "--name", "web-other")
    assert result.returncode == 0, result.stderr
    assert registered(cd, "web-other")

    # Every join that reached the server, refused or not, is in the audit log with the token's id
    # (the tampered download never did).
    records = server.landfall("audit", "--output", "json")
    assert records.ok, records.stderr
    joins = [r for r in records.json if r["operation"] == "Landfall.JoinInstance"]
    assert [r["result"] == "Success" for r in joins] == [False, False, False, False, True], joins
    assert joins[-1]["accessKeyId"] == "join-token/" + real.split(".")[0]
    assert joins[-1]["resources"]["instanceName"] == "web-other"
    assert all(real.split(".")[1] not in str(r) for r in joins)


def with_version(binary, version, path):
    """A copy of the agent binary that says it is `version` to a server offering it (the marker a
    build puts in it), as a newer release would."""
    data = pathlib.Path(binary).read_bytes()
    marker = b"\0landfall-agent-version="
    start = data.index(marker) + len(marker)
    end = data.index(b"\0", start)
    assert len(version) == end - start, "the test keeps the marker's length"
    path.write_bytes(data[:start] + version.encode() + data[end:])
    path.chmod(0o755)
    return path


def test_agents_older_than_the_offered_binary_are_flagged(landfall_factory):
    server = landfall_factory(start=False)
    running = subprocess.run([SLIM_AGENT, "--version"], capture_output=True, text=True).stdout.split()[1]
    newer = "9" + running[1:]
    offered = with_version(SLIM_AGENT, newer, server.workdir.parent / "landfall-agent-newer")
    server.start("--agent-binary", str(offered))
    # The install script offers what the binary says; it still runs (the marker is data).
    assert subprocess.run([str(offered), "--version"], capture_output=True, text=True).returncode == 0
    host = Host(server, "web-old", {"role": "web"}).start(agent=(SLIM_AGENT,))
    try:
        server.agent_polled("web-old")
        listed = server.landfall("instances", "--output", "json")
        assert listed.ok, listed.stderr
        (agent,) = [h["agent"] for h in listed.json if h["instanceName"] == "web-old"]
        assert (agent["agentVersion"], agent["outdated"]) == (f"landfall-agent/{running}", True), agent
        table = server.landfall("instances")
        assert f"landfall-agent/{running} (outdated: {newer} offered)" in table.stdout, table.stdout
        status, body = server.raw("Landfall_20261122.ListAgentStatus", {})
        assert status == 200 and body["offeredAgentVersion"] == newer, body
        page = server.console_page("/console/instances")
        assert f"outdated: {newer} offered" in page, page[-2000:]
    finally:
        host.stop()
