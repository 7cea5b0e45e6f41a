"""The server process: first start, restart persistence, graceful shutdown, listen rules, TLS."""

import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import LANDFALL_BIN, ca_issued_certificate, self_signed_certificate


def test_first_start_prints_the_environment_and_writes_admin_credentials(server):
    assert server.endpoint.startswith("http://127.0.0.1:")
    assert server.lines["AWS_PROFILE"] == "landfall"
    assert server.credentials_file == server.data_dir.resolve() / "credentials"
    text = server.credentials_file.read_text()
    assert text.startswith("[landfall]\n")
    assert "aws_access_key_id = AKLF" in text and "aws_secret_access_key = " in text
    # The three printed lines are all the aws CLI needs.
    result = server.aws("deploy", "list-applications")
    assert result.ok, result.stderr
    assert result.json == {"applications": []}


def test_restart_keeps_everything(server, cd):
    cd.create_application(applicationName="web")
    cd.create_deployment_config(deploymentConfigName="TwoAtATime", minimumHealthyHosts={"type": "HOST_COUNT", "value": 2})
    cd.create_deployment_group(
        applicationName="web", deploymentGroupName="prod", serviceRoleArn="arn:aws:iam::123456789012:role/cd",
        deploymentConfigName="TwoAtATime", onPremisesInstanceTagFilters=[{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}],
    )
    # Three hosts, two of them kept healthy: the deployment runs one host at a time. No agent runs
    # here, so it stays InProgress, its first host waiting to pick up its first lifecycle event.
    hosts = ["web-1", "web-2", "web-3"]
    for name in hosts:
        cd.register_on_premises_instance(instanceName=name, iamUserArn=f"arn:aws:iam::123456789012:user/{name}")
    cd.add_tags_to_on_premises_instances(instanceNames=hosts, tags=[{"Key": "env", "Value": "prod"}])
    deployment = cd.create_deployment(
        applicationName="web", deploymentGroupName="prod",
        revision={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "web.zip", "bundleType": "zip"}},
    )["deploymentId"]
    deadline = time.monotonic() + 5
    while cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] == "Created" and time.monotonic() < deadline:
        time.sleep(0.02)
    result = server.landfall("keys", "create", "--role", "read-only")
    reader_id = result.stdout.split("access key id:")[1].split()[0]
    reader_secret = result.stdout.split("secret access key:")[1].split()[0]
    credentials_before = server.credentials_file.read_text()
    before = {
        "app": cd.get_application(applicationName="web")["application"],
        "group": cd.get_deployment_group(applicationName="web", deploymentGroupName="prod")["deploymentGroupInfo"],
        "deployment": cd.get_deployment(deploymentId=deployment)["deploymentInfo"],
        "instance": cd.get_on_premises_instance(instanceName="web-1")["instanceInfo"],
        "config": cd.get_deployment_config(deploymentConfigName="TwoAtATime")["deploymentConfigInfo"],
        "targets": cd.batch_get_deployment_targets(deploymentId=deployment, targetIds=hosts)["deploymentTargets"],
    }
    assert before["deployment"]["status"] == "InProgress"
    assert before["deployment"]["deploymentOverview"]["InProgress"] == 1
    assert [t["instanceTarget"]["status"] for t in before["targets"]] == ["InProgress", "Pending", "Pending"]

    assert server.stop() == 0
    server.start()
    cd = server.client()
    after = {
        "app": cd.get_application(applicationName="web")["application"],
        "group": cd.get_deployment_group(applicationName="web", deploymentGroupName="prod")["deploymentGroupInfo"],
        "deployment": cd.get_deployment(deploymentId=deployment)["deploymentInfo"],
        "instance": cd.get_on_premises_instance(instanceName="web-1")["instanceInfo"],
        "config": cd.get_deployment_config(deploymentConfigName="TwoAtATime")["deploymentConfigInfo"],
        "targets": cd.batch_get_deployment_targets(deploymentId=deployment, targetIds=hosts)["deploymentTargets"],
    }
    # The running deployment comes back as it stood: its status, its hosts and their queued events.
    assert after == before
    # The administrator key is not replaced, and other keys still work.
    assert server.credentials_file.read_text() == credentials_before
    assert server.client(reader_id, reader_secret).list_applications()["applications"] == ["web"]
    # The one-active-deployment rule survives too.
    result = server.aws("deploy", "create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                        "--s3-location", "bucket=b,key=web.zip,bundleType=zip")
    assert not result.ok and deployment in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_server_gracefully(server, sig):
    assert server.stop(sig) == 0
    log = server.log()
    assert "shutting down" in log and "stopped" in log


def test_shutdown_finishes_requests_in_flight(server, cd):
    """Requests keep being answered right up to SIGTERM; after it, a request either gets its
    whole answer or finds the connection closed, never an error or a broken answer."""
    cd.create_application(applicationName="slowpoke")
    client = server.client()
    first_answer = threading.Event()
    results = []

    def hammer():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                results.append(client.get_application(applicationName="slowpoke")["application"]["applicationName"])
                first_answer.set()
            except Exception as error:  # the listener closed: done
                results.append(type(error).__name__)
                return

    thread = threading.Thread(target=hammer)
    thread.start()
    assert first_answer.wait(timeout=20)
    assert server.stop() == 0
    thread.join()
    assert results.count("slowpoke") >= 1
    # A keep-alive connection the server closed as it stopped shows as ConnectionClosedError.
    assert set(results) <= {"slowpoke", "EndpointConnectionError", "ConnectionClosedError"}, set(results)
    assert results[-1] != "slowpoke", "the server kept answering after SIGTERM"


def test_non_loopback_address_without_tls_is_refused(tmp_path):
    result = subprocess.run(
        [LANDFALL_BIN, "server", "--data-dir", str(tmp_path / "d"), "--listen", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "--tls-cert" in result.stderr
    assert not (tmp_path / "d").exists()


def test_bad_flags_are_usage_errors(tmp_path):
    result = subprocess.run([LANDFALL_BIN, "server", "--listen", "nonsense"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--listen" in result.stderr


def test_tls_serves_the_api(landfall_factory, tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    server = landfall_factory(start=False)
    server.start("--tls-cert", str(certificate), "--tls-key", str(key))
    assert server.endpoint.startswith("https://127.0.0.1:")
    result = server.aws("deploy", "create-application", "--application-name", "secure", env={"AWS_CA_BUNDLE": str(certificate)})
    assert result.ok, result.stderr
    listed = server.aws("deploy", "list-applications", env={"AWS_CA_BUNDLE": str(certificate)})
    assert listed.json["applications"] == ["secure"]
    # Plain HTTP to the TLS port gets nowhere.
    with pytest.raises(Exception):
        urllib.request.urlopen(server.endpoint.replace("https", "http") + "/health", timeout=5)
    context = ssl.create_default_context(cafile=str(certificate))
    with urllib.request.urlopen(server.endpoint + "/health", context=context, timeout=5) as response:
        assert response.read() == b"ok\n"
    # The landfall client trusts a private CA's bundle, and only with it. (It wants a server
    # certificate issued by the CA, not a self-signed CA certificate as the server's own.)
    ca_cert, server_cert, server_key = ca_issued_certificate(tmp_path)
    server.stop()
    server.start("--tls-cert", str(server_cert), "--tls-key", str(server_key))
    status = server.landfall("status", env={"AWS_CA_BUNDLE": str(ca_cert)})
    assert status.ok and "no deployments yet" in status.stdout, status.stderr
    untrusted = server.landfall("status")
    assert untrusted.returncode == 1 and "cannot reach" in untrusted.stderr, untrusted.stderr
    not_pem = server.landfall("status", env={"AWS_CA_BUNDLE": str(key.parent / "missing.pem")})
    assert not_pem.returncode == 2 and "AWS_CA_BUNDLE" in not_pem.stderr, not_pem.stderr
    # On every interface, the printed endpoint names this machine, not 0.0.0.0.
    server.stop()
    server.start("--tls-cert", str(server_cert), "--tls-key", str(server_key), listen="0.0.0.0:0")
    assert server.endpoint.startswith(f"https://{socket.gethostname()}:"), server.endpoint


def test_health_needs_no_credentials(server):
    with urllib.request.urlopen(server.endpoint + "/health", timeout=5) as response:
        assert (response.status, response.read()) == (200, b"ok\n")


def test_readiness_and_the_store_check(landfall_factory):
    server = landfall_factory(start=False)

    def check():
        return subprocess.run([LANDFALL_BIN, "server", "--data-dir", str(server.data_dir), "--check-store"],
                              capture_output=True, text=True, timeout=30)

    missing = check()
    assert missing.returncode == 1 and "no SQLite store" in missing.stderr, missing.stderr
    server.start()
    with urllib.request.urlopen(server.endpoint + "/ready", timeout=5) as response:
        assert response.status == 200 and response.read() == b"ready\n"
    # A running server's store can be checked beside it, and a stopped one's.
    running = check()
    assert running.returncode == 0 and "as this Landfall expects: ok" in running.stdout, running.stderr
    server.stop()
    assert check().returncode == 0
    # A store from a newer Landfall: the check says so, and a server refuses to start on it.
    import sqlite3

    with sqlite3.connect(server.data_dir / "landfall.db") as db:
        db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
    newer = check()
    assert newer.returncode == 1 and "newer than this Landfall knows" in newer.stderr, newer.stderr
    with pytest.raises(RuntimeError, match="newer than this Landfall knows"):
        server.start()
