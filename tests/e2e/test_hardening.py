"""Attacks a careless hook, a hostile bundle or a misbehaving client could make, each tried
against real processes, with what must hold afterwards (issue: hardening)."""

import threading

from hostsim import wait_for_status
from realhost import bundle
from test_agent import group_setup, upload_and_deploy

MiB = 1024 * 1024


def peak_rss(pid):
    """A process's peak resident memory in bytes (VmHWM)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def store_bytes(server):
    return sum(path.stat().st_size for path in server.data_dir.glob("landfall.db*"))


def read_whole_log(server, deployment_id, host, event, key=None):
    """Every page of an event's output through GetLifecycleEventLog: (text, largest page, size)."""
    text, offset, largest, size = [], 0, 0, None
    while True:
        status, body = server.raw("Landfall_20261122.GetLifecycleEventLog",
                                  {"deploymentId": deployment_id, "targetId": host, "lifecycleEventName": event,
                                   "offset": offset}, key=key)
        assert status == 200, body
        text.append(body["log"])
        largest = max(largest, len(body["log"].encode()))
        offset, size = body["nextOffset"], body["size"]
        if body["complete"]:
            return "".join(text), largest, size
        assert body["log"], "a page short of the end carries output"


def test_a_hook_flooding_its_output_is_bounded_at_every_step(server, hosts):
    # A small limit, so that what the agent manages to send is more than the server keeps.
    server.stop()
    server.start("--hook-log-limit", "256KiB")
    cd = server.client()
    host = hosts("web1")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    flood = 40 * MiB
    hook = ("#!/bin/sh\necho START-OF-FLOOD\n"
            f"head -c {flood} /dev/zero | tr '\\0' A | fold -w 1024\necho\necho END-OF-FLOOD\n")
    appspec = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: flood.sh\n      timeout: 120\n"
    path = bundle(server.workdir / "flood.tgz", {"appspec.yml": (appspec, 0o644), "flood.sh": (hook, 0o755)})
    stored_before = store_bytes(server)
    deployment_id = upload_and_deploy(server, path, "flood.tgz")
    info = wait_for_status(cd, deployment_id, timeout=180)
    assert info["status"] == "Succeeded", (info, host.log()[-3000:])

    # The agent streamed it without holding it (it held all of it before: +2.6 times the flood).
    assert peak_rss(host.process.pid) < 60 * MiB, peak_rss(host.process.pid)
    # The store keeps the start and the end, not the flood.
    assert store_bytes(server) - stored_before < 8 * MiB, store_bytes(server) - stored_before

    # Six readers at once, with a read-only key: pages of at most 1 MiB, never the whole log.
    reader = server.landfall("keys", "create", "--role", "read-only", "--output", "json").json["accessKey"]
    key = (reader["accessKeyId"], reader["secretAccessKey"])
    server_before = peak_rss(server.process.pid)
    results = []
    readers = [threading.Thread(target=lambda: results.append(
        read_whole_log(server, deployment_id, "web1", "AfterInstall", key=key))) for _ in range(6)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=120)
    assert len(results) == 6
    assert peak_rss(server.process.pid) - server_before < 48 * MiB, (server_before, peak_rss(server.process.pid))
    text, largest, size = results[0]
    assert all(result == results[0] for result in results)
    assert largest <= MiB + 16 * 1024, largest
    # Everything the agent sent is accounted for; the reader sees the start, a line saying how
    # much was left out, and the end, where a failure would show.
    assert size >= MiB
    assert len(text.encode()) < 300 * 1024
    assert text.startswith("LifecycleEvent - AfterInstall\nScript - flood.sh\n[stdout]START-OF-FLOOD\n"), text[:200]
    assert text.endswith("[stdout]END-OF-FLOOD\n"), text[-300:]
    assert "bytes of output left out here" in text

    # `landfall logs` reads it page by page, and the console shows the end with a way back.
    logs = server.landfall("logs", deployment_id, "--host", "web1", "--event", "AfterInstall")
    assert logs.ok, logs.stderr
    assert "[stdout]END-OF-FLOOD" in logs.stdout and "bytes of output left out here" in logs.stdout
    assert len(logs.stdout) < 300 * 1024
    page = server.console_page(f"/console/deployments/{deployment_id}/log?host=web1&event=AfterInstall")
    assert len(page) < MiB, len(page)
    assert "[stdout]END-OF-FLOOD" in page and "from the start" in page
    first = server.console_page(f"/console/deployments/{deployment_id}/log?host=web1&event=AfterInstall&offset=0")
    # (What the server kept fits one page.)
    assert "START-OF-FLOOD" in first and "END-OF-FLOOD" in first and len(first) < MiB
