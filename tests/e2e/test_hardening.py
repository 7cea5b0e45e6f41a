"""Attacks a careless hook, a hostile bundle or a misbehaving client could make, each tried
against real processes, with what must hold afterwards (issue: hardening)."""

import os
import pathlib
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from cluster import Cluster
from conftest import refusal, self_signed_certificate
from hostsim import agent_call, wait_for, wait_for_status
from monitoring import WebhookReceiver
from realhost import bundle
from test_agent import group_setup, lifecycle, upload_and_deploy
from test_engine import deploy, fleet, stop_all
from test_s3 import s3_client

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
    # much was left out, and the end, where a failure would show. (How much the agent manages to
    # send depends on how fast the flood comes, at least its half-megabyte queue: always more than
    # the server keeps.)
    assert size > 256 * 1024, size
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


# -- connections ----------------------------------------------------------------------------------

def connect(server):
    host, port = server.endpoint.split("://", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def closed_by_server(sock):
    """Whether the server has closed the connection (without waiting for it)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def health(server, timeout=10):
    with urllib.request.urlopen(server.endpoint + "/health", timeout=timeout) as response:
        return response.read()


def test_connections_that_ask_nothing_are_closed_and_a_long_poll_is_not(server, hosts):
    server.stop()
    server.start("--header-timeout", "2", "--idle-timeout", "4")
    cd = server.client()
    # An idle TCP connection; a request head a byte at a time (slowloris); a keep-alive
    # connection after its request; a body that stops coming.
    idle = connect(server)
    slow = connect(server)
    slow.sendall(b"POST / HTTP/1.1\r\nHost: landfall\r\n")
    kept = connect(server)
    kept.sendall(b"GET /health HTTP/1.1\r\nHost: landfall\r\n\r\n")
    assert kept.recv(4096).startswith(b"HTTP/1.1 200")
    stalled = connect(server)
    stalled.sendall(b"POST / HTTP/1.1\r\nHost: landfall\r\nContent-Length: 100\r\n"
                    b"X-Amz-Target: CodeDeploy_20141006.ListApplications\r\n\r\n{\"a\":")
    # An agent's long poll, which outlives the idle time.
    host = hosts("web1", start=False)
    polled = {}
    poll = threading.Thread(target=lambda: polled.update(answer=host.call("PollHostCommand", {"HostIdentifier": host.arn})))
    poll.start()

    def trickle():
        for _ in range(40):
            if closed_by_server(slow):
                return True
            try:
                slow.sendall(b"X")
            except OSError:
                return True
            time.sleep(0.25)
        return False

    assert trickle(), "a head sent a byte at a time is cut"
    wait_for(lambda: closed_by_server(idle), timeout=15, message="the idle connection to be closed")
    wait_for(lambda: closed_by_server(kept), timeout=15, message="the kept-alive connection to be closed")
    answer = b""
    stalled.settimeout(15)
    while not answer.endswith(b"}"):
        piece = stalled.recv(4096)
        if not piece:
            break
        answer += piece
    assert b"408" in answer.split(b"\r\n")[0] and b"RequestTimeoutException" in answer, answer

    # The poll is still waiting: a deployment now reaches it over the same request.
    assert poll.is_alive()
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    path = bundle(server.workdir / "noop.tgz", {"appspec.yml": ("version: 0.0\nos: linux\n", 0o644)})
    upload_and_deploy(server, path, "noop.tgz")
    poll.join(timeout=30)
    status, body = polled["answer"]
    assert status == 200 and body["HostCommand"]["CommandName"] == "ApplicationStop", body


def test_an_idle_tls_connection_is_closed(landfall_factory, tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    server = landfall_factory(start=False)
    server.start("--tls-cert", str(certificate), "--tls-key", str(key), "--header-timeout", "2")
    silent = connect(server)
    wait_for(lambda: closed_by_server(silent), timeout=15, message="a connection without a ClientHello to be closed")
    context = ssl.create_default_context(cafile=str(certificate))
    with urllib.request.urlopen(server.endpoint + "/health", context=context, timeout=5) as response:
        assert response.read() == b"ok\n"


def test_a_server_short_of_descriptors_sheds_idle_connections_and_answers(landfall_factory):
    server = landfall_factory(start=False)
    server.start(open_files=256)
    cd = server.client()
    assert "max_connections=96" in server.log(), server.log()[-2000:]
    held = [connect(server) for _ in range(300)]
    # Health checks, the API and agents are answered all the same.
    assert health(server) == b"ok\n"
    hosts = fleet(server, cd, 2)
    for host in hosts:
        host.start()
    try:
        info = wait_for_status(cd, deploy(cd), timeout=60)
        assert info["status"] == "Succeeded", info
    finally:
        stop_all(hosts)
    # The oldest idle connections made room; the server says so now and then, not in a loop.
    closed = sum(closed_by_server(sock) for sock in held)
    assert closed >= 300 - 96, closed
    for sock in held:
        sock.close()

    # A limit set above what the descriptors allow: accepting runs out of them, backs off and
    # closes idle connections to get some back, saying so now and then, not in a loop.
    server.stop()
    server.start("--max-connections", "1000", open_files=256)
    held = [connect(server) for _ in range(300)]
    wait_for(lambda: "cannot accept connections" in server.log(), timeout=30, message="descriptors to run out")
    assert health(server, timeout=30) == b"ok\n"
    assert server.client().list_applications()["applications"] == ["web"]
    assert server.log().count("cannot accept connections") < 10, server.log().count("cannot accept connections")
    for sock in held:
        sock.close()


# -- bundles --------------------------------------------------------------------------------------

def download_failure(cd, deployment_id, host="web1"):
    info = wait_for_status(cd, deployment_id, timeout=90)
    assert info["status"] == "Failed", info
    event = lifecycle(cd, deployment_id, host)["DownloadBundle"]
    assert event["status"] == "Failed", event
    return event["diagnostics"]["message"]


def deploys_a_small_revision(server, cd, name):
    path = bundle(server.workdir / f"{name}.tgz", {"appspec.yml": ("version: 0.0\nos: linux\n", 0o644)})
    info = wait_for_status(cd, upload_and_deploy(server, path, f"{name}.tgz"), timeout=90)
    assert info["status"] == "Succeeded", info


def test_a_chain_of_links_cannot_lead_a_revision_outside(server, cd, hosts):
    host = hosts("web1")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    # The revision unpacks to hosts/web1/root/GROUP/DEPLOYMENT/deployment-archive: five levels
    # up is hosts/, where an attacker's AppSpec, hook and file wait.
    outside = server.workdir / "hosts"
    www, marker = server.workdir / "www", server.workdir / "hook-outside-ran"
    (outside / "stolen.txt").write_text("a file from outside the revision\n")
    (outside / "outside.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (outside / "outside.sh").chmod(0o755)
    (outside / "appspec-outside.yml").write_text(
        f"version: 0.0\nos: linux\nfiles:\n  - source: e5/stolen.txt\n    destination: {www}\n"
        "hooks:\n  BeforeInstall:\n    - location: e5/outside.sh\n")
    path = server.workdir / "chain.tar"
    with tarfile.open(path, "w") as tar:
        directory = tarfile.TarInfo("a")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        links = [("a/l", ".."), ("e1", "a/l/.."), ("e2", "e1/.."), ("e3", "e2/.."), ("e4", "e3/.."), ("e5", "e4/.."),
                 ("appspec.yml", "e5/appspec-outside.yml")]
        for name, target in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
    message = download_failure(cd, upload_and_deploy(server, path, "chain.tar", "tar"))
    assert "e1 points to a/l/.., which leads outside the revision directory" in message, message
    assert not marker.exists() and not (www / "stolen.txt").exists()
    assert not list((host.dir / "root").glob("*/*/deployment-archive"))
    deploys_a_small_revision(server, cd, "after-chain")


def test_a_bundle_expanding_past_the_limit_is_refused_and_the_agent_carries_on(server, cd, hosts):
    host = hosts("web1", start=False)
    with open(host.config, "a") as config:
        config.write(":landfall_max_bundle_size: 32MiB\n")
    host.start()
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    zeros = bytes(16 * MiB)
    bomb = server.workdir / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        for index in range(10):
            archive.writestr(f"zeros-{index}.bin", zeros)
    assert bomb.stat().st_size < MiB
    message = download_failure(cd, upload_and_deploy(server, bomb, "bomb.zip", "zip"))
    assert "its 11 entries expand to 160 MiB, more than the limit of 32 MiB (the agent's :landfall_max_bundle_size:)" in message, message

    # A tar says its sizes one entry at a time: refused at the entry that would pass the limit.
    files = {"appspec.yml": ("version: 0.0\nos: linux\n", 0o644)}
    files.update({f"zeros-{index}.bin": ("\0" * (16 * MiB), 0o644) for index in range(10)})
    message = download_failure(cd, upload_and_deploy(server, bundle(server.workdir / "bomb.tgz", files), "bomb.tgz"))
    assert "expands to more than the limit of 32 MiB (the agent's :landfall_max_bundle_size:): the entry app/zeros-1.bin (16 MiB) would take it to 32 MiB" in message, message

    # Nothing of either stays on the host, and the next deployment goes through.
    written = sum(f.stat().st_size for f in (host.dir / "root").rglob("*") if f.is_file() and not f.name.startswith("bundle"))
    assert written < MiB, written
    assert not list((host.dir / "root").glob("*/*/deployment-archive"))
    deploys_a_small_revision(server, cd, "after-bomb")


# -- hooks ---------------------------------------------------------------------------------------

def running(pid):
    """Whether process `pid` runs (a zombie does not)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_hook_does_not_outlive_its_agent(server, cd, hosts):
    host = hosts("web1")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    pid_file, finished = server.workdir / "hook.pid", server.workdir / "hook.finished"
    script = f"#!/bin/sh\necho $$ > {pid_file}\nsleep 25\ntouch {finished}\n"
    appspec = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: slow.sh\n      timeout: 60\n"
    path = bundle(server.workdir / "slow.tgz", {"appspec.yml": (appspec, 0o644), "slow.sh": (script, 0o755)})
    deployment_id = upload_and_deploy(server, path, "slow.tgz")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60, message="the hook to start")
    pid = int(pid_file.read_text())
    assert running(pid)

    # The agent dies under its hook (SIGKILL: no chance to end it) and starts again.
    host.kill()
    assert running(pid), "the hook runs on without its agent"
    host.start()
    info = wait_for_status(cd, deployment_id, timeout=60)
    assert info["status"] == "Failed", info
    # By the time the event is reported failed, its hook is gone.
    assert not running(pid), "the hook outlived its agent's restart"
    event = lifecycle(cd, deployment_id, "web1")["AfterInstall"]
    assert event["status"] == "Failed" and event["diagnostics"]["errorCode"] == "UnknownError", event
    assert not finished.exists()
    assert "ended the hook scripts the agent's last run left running" in host.log()
    deploys_a_small_revision(server, cd, "after-restart")


# -- triggers --------------------------------------------------------------------------------------

def test_triggers_do_not_reach_this_host_or_the_metadata_service(landfall_factory):
    receiver = WebhookReceiver("any-secret")
    server = landfall_factory()
    try:
        deployer = server.landfall("keys", "create", "--role", "deployer", "--output", "json").json["accessKey"]
        cd = server.client(deployer["accessKeyId"], deployer["secretAccessKey"])
        targets = {
            "internal": receiver.url + "/internal-admin",
            "named": receiver.url.replace("127.0.0.1", "localhost") + "/by-name",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }
        hosts = fleet(server, cd, 1, triggerConfigurations=[
            {"triggerName": name, "triggerTargetArn": url, "triggerEvents": ["DeploymentStart"]}
            for name, url in targets.items()])
        for host in hosts:
            host.start()
        try:
            assert wait_for_status(cd, deploy(cd))["status"] == "Succeeded"
        finally:
            stop_all(hosts)
        for why in ("is this host (loopback", "localhost resolves to this host (loopback",
                    "is a link-local address (where cloud metadata services answer)"):
            wait_for(lambda: why in server.log(), timeout=30, message=f"a delivery refused as {why}")
        assert receiver.notifications() == []

        # The operator may let them reach this host and private networks; never link-local.
        refusals = server.log().count("is a link-local address (where cloud metadata services answer)")
        server.stop()
        server.start("--trigger-allow-private-addresses")
        wait_for(lambda: len(receiver.notifications()) == 2, timeout=60, message="both loopback triggers")
        assert sorted(n[2]["eventTriggerName"] for n in receiver.notifications()) == ["internal", "named"]
        wait_for(lambda: server.log().count("is a link-local address (where cloud metadata services answer)") > refusals,
                 timeout=60, message="the metadata trigger refused again")
    finally:
        receiver.stop()


# -- the console -----------------------------------------------------------------------------------

def test_forwarded_addresses_are_believed_only_from_the_operators_proxies(landfall_factory):
    server = landfall_factory()

    def sign_in_from(forwarded):
        request = urllib.request.Request(
            server.endpoint + "/console/login", method="POST",
            data=urllib.parse.urlencode({"access_key_id": "AKLFNOBODY0000000000", "secret_access_key": "guess"}).encode(),
            headers={"Origin": server.endpoint, "X-Forwarded-For": forwarded})
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 401
        records = [r for r in server.landfall("audit", "--output", "json").json if r["operation"] == "Console.SignIn"]
        return records[-1]["sourceAddress"]

    # Anyone can write the header: from a client that is not a named proxy it is ignored.
    assert sign_in_from("203.0.113.7").split(":")[0] == "127.0.0.1"
    server.stop()
    server.start("--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8")
    assert sign_in_from("203.0.113.7").split(":")[0] == "203.0.113.7"
    # What a client wrote to the left of what the proxies appended is not believed either.
    assert sign_in_from("198.51.100.1, 203.0.113.8, 10.1.2.3").split(":")[0] == "203.0.113.8"


# -- bundles and the keys that read them ---------------------------------------------------------

def test_an_instance_key_reads_only_the_bundles_deployed_to_its_instance(server, cd, hosts):
    web = hosts("web1")
    other = hosts("db1", role="db")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    deployed = bundle(server.workdir / "app.tgz", {"appspec.yml": ("version: 0.0\nos: linux\n", 0o644)})
    info = wait_for_status(cd, upload_and_deploy(server, deployed, "app.tgz"), timeout=90)
    assert info["status"] == "Succeeded", info
    secret = bundle(server.workdir / "payroll.tgz", {"appspec.yml": ("version: 0.0\nos: linux\n", 0o644)})
    assert server.aws("s3", "cp", str(secret), "s3://bundles/payroll.tgz").ok

    def read(host, key):
        try:
            s3_client(server, key=host.key).get_object(Bucket="bundles", Key=key)["Body"].read()
            return "read"
        except botocore.exceptions.ClientError as error:
            return error.response["Error"]["Code"]

    # Its own deployment's bundle: the agent downloaded it with this very key.
    assert read(web, "app.tgz") == "read"
    # Another bundle, or another host's: refused.
    assert read(web, "payroll.tgz") == "AccessDenied"
    assert read(other, "app.tgz") == "AccessDenied"
    # Writing stays refused to both.
    with pytest.raises(botocore.exceptions.ClientError):
        s3_client(server, key=web.key).put_object(Bucket="bundles", Key="app.tgz", Body=b"x")


# -- the store -------------------------------------------------------------------------------------

def test_a_dead_database_fails_requests_at_once_and_is_recovered_from(workdir, checker):
    cluster = Cluster(workdir, checker, size=1)
    try:
        replica = cluster.replicas[0]
        key_id, secret, region = replica.admin_key()
        # A client that gives up after five seconds, as a load balancer or an impatient script would.
        impatient = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region).client(
            "codedeploy", endpoint_url=replica.endpoint,
            config=Config(read_timeout=5, connect_timeout=5, retries={"max_attempts": 1, "mode": "standard"}))
        impatient.create_application(applicationName="before")

        def ready():
            try:
                with urllib.request.urlopen(replica.endpoint + "/ready", timeout=5) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        cluster.postgres.stop("immediate")
        wait_for(lambda: ready() == 503, timeout=30, message="/ready to say the store is gone")
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            impatient.list_applications()
        assert refused.value.response["Error"]["Code"] == "ServiceUnavailableException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "store" in refused.value.response["Error"]["Message"]
        assert "the PostgreSQL store does not answer" in replica.log()

        # Back by itself once the database is.
        cluster.postgres.start()
        wait_for(lambda: ready() == 200, timeout=30, message="/ready to say the store is back")
        assert impatient.list_applications()["applications"] == ["before"]
        assert "the PostgreSQL store answers again" in replica.log()
    finally:
        cluster.close()


# -- small ones ------------------------------------------------------------------------------------

def test_a_malformed_chunked_body_is_a_bad_request_not_too_large(server):
    sock = connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: landfall\r\nTransfer-Encoding: chunked\r\n"
                 b"X-Amz-Target: CodeDeploy_20141006.ListApplications\r\n\r\nzz\r\nnot a chunk\r\n0\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(4096)
        if not piece:
            break
        answer += piece
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"SerializationException" in answer and b"could not be read" in answer, answer


def test_the_store_files_are_private_whatever_the_umask(server):
    for name in ("landfall.db", "landfall.db-wal", "landfall.db-shm"):
        assert (server.data_dir / name).stat().st_mode & 0o777 == 0o600, name


def test_a_files_destination_with_parent_components_is_refused_where_it_is_written(server, cd, hosts):
    hosts("web1")
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    appspec = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/www/../../etc/cron.d\n"
    path = bundle(server.workdir / "dots.tgz", {"appspec.yml": (appspec, 0o644), "site/x": ("x\n", 0o644)})
    deployment_id = upload_and_deploy(server, path, "dots.tgz")
    info = wait_for_status(cd, deployment_id, timeout=90)
    assert info["status"] == "Failed", info
    failed = [e for e in lifecycle(cd, deployment_id, "web1").values() if e["status"] == "Failed"]
    assert len(failed) == 1, failed
    message = failed[0]["diagnostics"]["message"]
    assert "appspec.yml:5:18" in message and "has a '..' component" in message, message
    assert not pathlib.Path("/etc/cron.d/x").exists()


def test_a_full_data_disk_says_so_changes_nothing_and_loses_nothing(landfall_factory, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    server = None
    try:
        server = landfall_factory(start=False)
        server.data_dir = disk / "data"
        server.start()
        cd = server.client()
        cd.create_application(applicationName="before")
        s3 = s3_client(server)
        s3.create_bucket(Bucket="bundles")
        with open(disk / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(bytes(65536))
            except OSError:
                pass
        # Refused, saying why; and nothing half-made.
        code, message = refusal(cd.create_application, applicationName="during")
        assert code == "InternalFailure" and "disk is full" in message, message
        assert cd.list_applications()["applications"] == ["before"]
        # The refusal is audited: in the audit log if the store can take one more record, else
        # in the server's own log.
        in_store = [r for r in server.landfall("audit", "--output", "json").json
                    if r["operation"] == "CreateApplication" and r["result"] == "InternalFailure"]
        assert in_store or ('cannot write the audit log; the record is kept here instead' in server.log()
                            and '"operation":"CreateApplication"' in server.log()), server.log()[-3000:]
        with pytest.raises(botocore.exceptions.ClientError) as upload:
            s3.put_object(Bucket="bundles", Key="app.tgz", Body=bytes(1024 * 1024))
        assert "disk is full" in upload.value.response["Error"]["Message"], upload.value.response
        (disk / "filler").unlink()
        # Room again: writes work, and outlive a restart (a write after the failure must not be
        # left in a transaction nobody commits).
        cd.create_application(applicationName="after")
        server.restart()
        assert server.client().list_applications()["applications"] == ["after", "before"]
    finally:
        if server is not None and server.process is not None:
            server.stop()
        subprocess.run(["umount", str(disk)], check=False)


# -- clients written elsewhere -------------------------------------------------------------------

def test_setup_scripts_can_run_twice_and_copy_bundles_in_the_store(server, tmp_path):
    # `aws s3 mb` twice: S3 in us-east-1 answers its owner re-creating a bucket with success.
    assert server.aws("s3", "mb", "s3://bundles").ok
    again = server.aws("s3", "mb", "s3://bundles")
    assert again.ok, again.stderr
    small, large = tmp_path / "small.zip", tmp_path / "large.zip"
    small.write_bytes(os.urandom(100_000))
    large.write_bytes(os.urandom(20 * MiB))
    for path in (small, large):
        assert server.aws("s3", "cp", str(path), f"s3://bundles/{path.name}").ok
        # Within the store: CopyObject, and above the CLI's multipart threshold UploadPartCopy.
        copied = server.aws("s3", "cp", f"s3://bundles/{path.name}", f"s3://bundles/copy-{path.name}")
        assert copied.ok, copied.stderr
        back = tmp_path / f"back-{path.name}"
        assert server.aws("s3", "cp", f"s3://bundles/copy-{path.name}", str(back)).ok
        assert back.read_bytes() == path.read_bytes()
    # Metadata goes with a copy unless replaced.
    s3 = s3_client(server)
    s3.put_object(Bucket="bundles", Key="typed", Body=b"x", ContentType="application/zip", Metadata={"build": "42"})
    s3.copy_object(Bucket="bundles", Key="typed-copy", CopySource={"Bucket": "bundles", "Key": "typed"})
    head = s3.head_object(Bucket="bundles", Key="typed-copy")
    assert (head["ContentType"], head["Metadata"]) == ("application/zip", {"build": "42"})
    # A read-only key may not copy.
    reader = server.landfall("keys", "create", "--role", "read-only", "--output", "json").json["accessKey"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3_client(server, key=(reader["accessKeyId"], reader["secretAccessKey"])).copy_object(
            Bucket="bundles", Key="stolen", CopySource={"Bucket": "bundles", "Key": "typed"})
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_calls_for_other_services_are_answered_in_their_protocol(server):
    identity = server.aws("sts", "get-caller-identity")
    assert identity.ok, identity.stderr
    key_id, _, _ = server.admin_key()
    assert identity.json["UserId"] == key_id and identity.json["Arn"].endswith(f":user/{key_id}")
    assert len(identity.json["Account"]) == 12 and identity.json["Account"].isdigit()
    # IAM (as `aws deploy register` calls it): an XML error the CLI reads, saying what this is.
    created = server.aws("iam", "create-user", "--user-name", "web-1")
    assert not created.ok
    assert "InvalidAction" in created.stderr and "This is Landfall" in created.stderr, created.stderr
    registered = server.aws("deploy", "register", "--instance-name", "web-1", "--region", "us-east-1")
    # (The CLI prints the error, and what to do, but exits 0 all the same.)
    assert "when calling the CreateUser operation: This is Landfall" in registered.stderr, registered.stderr
    # A JSON call for another service is told the same, once authenticated.
    status, body = server.raw("AmazonSSM.GetParameter", {"Name": "x"}, service="ssm")
    assert status == 400 and body["__type"] == "UnknownOperationException" and "This is Landfall" in body["message"]
    # Unauthenticated, none of this is answered.
    status, body = server.raw("AmazonSSM.GetParameter", {"Name": "x"}, sign=False)
    assert status in (400, 403) and "This is Landfall" not in str(body)


def test_the_official_agents_version_header_is_what_instances_show(server, cd):
    [host] = fleet(server, cd, 1)
    deploy(cd)
    status, answer = agent_call(server.endpoint, host.region, host.key, "PollHostCommand",
                                {"HostIdentifier": host.arn},
                                headers={"x-amz-codedeploy-agent-version": "OFFICIAL_1.8.1-18_deb"})
    assert status == 200 and answer["HostCommand"], answer
    listed = server.landfall("instances", "--output", "json")
    assert listed.ok, listed.stderr
    assert "OFFICIAL_1.8.1-18_deb" in listed.stdout and "Botocore" not in listed.stdout, listed.stdout
