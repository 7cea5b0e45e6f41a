"""`landfall agent-update`: hosts replace their `landfall-agent` with the binary the server
offers, a few at a time, between lifecycle events, with real agent processes. A newer release is
made by giving a copy of the agent binary a higher version (the marker the server and the agent
read it from); a binary that does not start is refused, and one that dies before it confirms is
rolled back by the agent."""

import os
import shutil
import signal
import subprocess

from hostsim import wait_for, wait_for_status
from realhost import SLIM_AGENT, Host
from test_agent import group_setup, revision
from test_install import with_version

RUNNING = subprocess.run([SLIM_AGENT, "--version"], capture_output=True, text=True).stdout.split()[1]
NEWER = "9" + RUNNING[1:]


def own_agent(host):
    """A copy of the slim agent for this host alone (it replaces itself)."""
    path = host.dir / "bin" / "landfall-agent"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SLIM_AGENT, path)
    return path


def version_of(binary):
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()


def updates(server, rollout=None):
    status, body = server.raw("Landfall_20261122.ListAgentUpdates", {"rolloutId": rollout} if rollout else {})
    assert status == 200, body
    return body["updates"]


def start_server(landfall_factory, offered):
    server = landfall_factory(start=False)
    server.start("--agent-binary", str(offered))
    return server


def one_host_updating(landfall_factory, offered):
    """A server offering `offered`, one host running its own agent, and `landfall agent-update
    --wait` for it: (server, host, the host's binary, what the command printed)."""
    server = start_server(landfall_factory, offered)
    host = Host(server, "web-1", {"role": "web"})
    binary = own_agent(host)
    host.start(agent=(str(binary),))
    try:
        server.agent_polled("web-1")
        return server, host, binary, server.landfall("agent-update", "--instance", "web-1", "--wait")
    except BaseException:
        host.stop()
        raise


def test_a_groups_agents_update_one_at_a_time_and_keep_deploying(landfall_factory, tmp_path):
    offered = with_version(SLIM_AGENT, NEWER, tmp_path / "landfall-agent-newer")
    server = start_server(landfall_factory, offered)
    cd = server.client()
    hosts = [Host(server, f"web-{n}", {"role": "web"}) for n in range(3)]
    binaries = [own_agent(host) for host in hosts]
    try:
        for host, binary in zip(hosts, binaries):
            host.start(agent=(str(binary),))
        for host in hosts:
            server.agent_polled(host.name)
        group_setup(cd)
        result = server.landfall("agent-update", "--application", "app", "--group", "dg", "--max-unavailable", "1",
                                 "--wait")
        assert result.ok, result.stdout + result.stderr
        assert f"3 host(s) to update to landfall-agent {NEWER}, 1 at a time" in result.stdout
        assert result.stdout.count("Succeeded") == 3, result.stdout
        done = updates(server)
        assert {u["status"] for u in done} == {"Succeeded"}
        # One at a time: no host was told to update before the one before it came back.
        spans = sorted((u["offerTime"], u["finishTime"]) for u in done)
        assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans
        # Each agent replaced its own binary and runs it in the same process, reporting the new version.
        for host, binary in zip(hosts, binaries):
            assert version_of(binary) == f"landfall-agent {NEWER}"
            assert host.process.poll() is None
            assert os.readlink(f"/proc/{host.process.pid}/exe") == str(binary)
            assert not binary.with_name("landfall-agent.new").exists()
        listed = server.landfall("instances", "--output", "json").json
        assert {h["agent"]["agentVersion"] for h in listed} == {f"landfall-agent/{NEWER}"}
        assert not any(h["agent"]["outdated"] for h in listed)
        # The updated agents deploy (the three hosts share this machine's files: OVERWRITE).
        assert server.aws("s3", "mb", "s3://bundles").ok
        www, trace = server.workdir / "www", server.workdir / "trace"
        assert server.aws("s3", "cp", str(revision(server.workdir, "v1.tgz", "v1", www, trace)), "s3://bundles/v1.tgz").ok
        created = server.aws("deploy", "create-deployment", "--application-name", "app", "--deployment-group-name", "dg",
                             "--s3-location", "bucket=bundles,key=v1.tgz,bundleType=tgz",
                             "--file-exists-behavior", "OVERWRITE")
        assert created.ok, created.stderr
        info = wait_for_status(cd, created.json["deploymentId"], timeout=90)
        assert info["status"] == "Succeeded" and info["deploymentOverview"]["Succeeded"] == 3, info
        # Asking again: nothing to do.
        again = server.landfall("agent-update", "--instance", "web-0")
        assert again.ok and f"web-0 left out: it runs {NEWER} already" in again.stdout, again.stdout
    finally:
        for host in hosts:
            host.stop()


def test_a_binary_that_does_not_start_is_refused(landfall_factory, tmp_path):
    # A "release" whose binary is cut short: its checksum is the server's, but it does not run.
    newer = with_version(SLIM_AGENT, NEWER, tmp_path / "whole")
    data = newer.read_bytes()
    broken = tmp_path / "landfall-agent-broken"
    broken.write_bytes(data[: data.index(b"landfall-agent-version=") + 64])
    broken.chmod(0o755)
    server, host, binary, result = one_host_updating(landfall_factory, broken)
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "web-1 Failed: the agent refused the binary: the new binary" in result.stdout, result.stdout
        # Still the old agent, in the same process, nothing left beside it; it still polls.
        assert version_of(binary) == f"landfall-agent {RUNNING}"
        assert host.process.poll() is None
        assert sorted(p.name for p in binary.parent.iterdir()) == ["landfall-agent"]
        assert "the agent update was refused" in host.log()
    finally:
        host.stop()


def test_an_update_that_dies_before_it_confirms_is_rolled_back(landfall_factory, tmp_path):
    offered = with_version(SLIM_AGENT, NEWER, tmp_path / "landfall-agent-newer")
    server, host, binary, result = one_host_updating(landfall_factory, offered)
    try:
        assert result.ok, result.stdout + result.stderr
        # The new binary runs and polled once; before its first poll comes back (and confirms),
        # it dies, and is started again as systemd would.
        assert version_of(binary) == f"landfall-agent {NEWER}"
        assert binary.with_name("landfall-agent.previous").exists()
        host.process.send_signal(signal.SIGKILL)
        host.process.wait(timeout=10)
        host.process = None
        host.start(agent=(str(binary),))
        wait_for(lambda: version_of(binary) == f"landfall-agent {RUNNING}", timeout=30)
        assert "rolling back" in host.log()
        assert sorted(p.name for p in binary.parent.iterdir()) == ["landfall-agent"]
        # The old agent runs again and is flagged outdated.
        def outdated():
            (agent,) = [h["agent"] for h in server.landfall("instances", "--output", "json").json]
            return agent["agentVersion"] == f"landfall-agent/{RUNNING}" and agent["outdated"]
        wait_for(outdated, timeout=30)
    finally:
        host.stop()
