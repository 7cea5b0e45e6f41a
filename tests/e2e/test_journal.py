"""What Landfall keeps about what happened: the audit log of every call that changes something
(refused ones included), each deployment's timeline (`landfall events`), and the server's
metrics in the Prometheus format (checked by promtool)."""

import subprocess
import urllib.error
import urllib.request

from conftest import refused
from hostsim import wait_for_status
from monitoring import PROMTOOL, deploy, revision, setup_group
from sources import free_port


def key_of(server, role):
    created = server.landfall("keys", "create", "--role", role, "--output", "json")
    assert created.ok, created.stderr
    key = created.json["accessKey"]
    return key["accessKeyId"], key["secretAccessKey"]


def test_the_audit_log_records_every_change_and_who_made_it(server):
    admin = server.admin_key()[0]
    read_only = key_of(server, "read-only")
    deployer = key_of(server, "deployer")
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    assert server.aws("deploy", "list-applications").ok
    reader = server.client(*read_only)
    reader.list_applications()
    refused("AccessDeniedException", reader.create_application, applicationName="sneaky")
    assert server.client(*deployer).delete_application(applicationName="shop")

    audit = server.landfall("audit", "--output", "json")
    assert audit.ok, audit.stderr
    calls = [(r["operation"], r["accessKeyId"], r["role"], r["resources"].get("applicationName"), r["result"])
             for r in audit.json if r["operation"].endswith("Application")]
    assert calls == [
        ("CreateApplication", admin, "admin", "shop", "Success"),
        ("CreateApplication", read_only[0], "read-only", "sneaky", "AccessDeniedException"),
        ("DeleteApplication", deployer[0], "deployer", "shop", "Success"),
    ]
    # Reads are not audited; key creation is (by the administrator), without its secret.
    operations = [r["operation"] for r in audit.json]
    assert "ListApplications" not in operations
    assert operations.count("Landfall.CreateAccessKey") == 2
    assert all(r["sourceAddress"] == "127.0.0.1" for r in audit.json)
    assert read_only[1] not in audit.stdout and deployer[1] not in audit.stdout

    # Writes to the bundle store are audited too.
    assert server.aws("s3", "mb", "s3://audited").ok
    assert server.aws("s3", "cp", __file__, "s3://audited/releases/v1.py").ok
    bundle_writes = server.landfall("audit", "--operation", "S3.PutObject", "--output", "json").json
    assert [(r["resources"], r["result"]) for r in bundle_writes] == [
        ({"bucket": "audited", "key": "releases/v1.py"}, "Success")]

    # Filters, and the text view.
    only = server.landfall("audit", "--key", read_only[0], "--since", "1h", "--output", "json")
    assert [r["operation"] for r in only.json] == ["CreateApplication"]
    text = server.landfall("audit", "--operation", "DeleteApplication")
    assert "DeleteApplication" in text.stdout and "deployer" in text.stdout and "CreateApplication" not in text.stdout
    assert server.landfall("audit", "--since", "soon").returncode == 2

    # Only administrators read it, and nothing changes it.
    denied = server.landfall("audit", env={"AWS_ACCESS_KEY_ID": deployer[0], "AWS_SECRET_ACCESS_KEY": deployer[1],
                                           "AWS_PROFILE": ""})
    assert not denied.ok and "AccessDenied" in denied.stderr
    for operation in ["DeleteAuditRecords", "UpdateAuditRecord", "PutAuditRecord"]:
        status, body = server.raw(f"Landfall_20261122.{operation}", {})
        assert (status, body["__type"]) == (400, "UnknownOperationException")


def metrics(server, token=None):
    request = urllib.request.Request(server.endpoint + "/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_deployment_timeline_and_the_server_metrics(server, cd, hosts, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    host = hosts("web-1", start=False, role="web")
    # The agent serves its own metrics when its configuration names an address.
    agent_metrics = f"127.0.0.1:{free_port()}"
    with open(host.config, "a") as config:
        config.write(f":landfall_metrics_listen: {agent_metrics}\n")
    host.start(TEST_HOST="web-1", OUT_DIR=str(out))
    setup_group(server)
    deployment = deploy(server, revision(tmp_path, "v1", slow_seconds=1))
    # Followed from the start, the timeline ends by itself when the deployment does.
    followed = server.landfall("events", deployment, "--follow")
    assert followed.ok, followed.stderr
    assert wait_for_status(cd, deployment)["status"] == "Succeeded"
    assert "The deployment is Succeeded." in followed.stdout.splitlines()[-1]

    events = server.landfall("events", deployment, "--output", "json").json
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    kinds = [(e["type"], e.get("status"), e.get("lifecycleEvent")) for e in events]
    assert kinds[0][0] == "Created"
    assert kinds[1] == ("StatusChanged", "InProgress", None)
    assert kinds[-1] == ("StatusChanged", "Succeeded", None)
    assert ("WaveStarted", None, None) in kinds
    assert ("LifecycleEvent", "Succeeded", "ApplicationStart") in kinds
    assert ("InstanceStatusChanged", "Succeeded", None) in kinds
    wave = next(e for e in events if e["type"] == "WaveStarted")
    assert wave["instanceIds"] == ["web-1"]

    # /metrics wants the metrics token; what it serves passes promtool.
    assert metrics(server)[0] == 401
    assert metrics(server, "wrong")[0] == 401
    token = (server.data_dir / "metrics-token").read_text().strip()
    status, text = metrics(server, token)
    assert status == 200
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines() if line and not line.startswith("#")}
    assert samples['landfall_deployments{status="Succeeded"}'] == 1
    assert samples['landfall_api_requests_total{operation="CreateDeployment",error="none"}'] == 1
    assert samples['landfall_agents_connected'] == 1
    assert samples['landfall_lifecycle_event_duration_seconds_count{event="ApplicationStart",result="Succeeded"}'] == 1
    assert samples['landfall_lifecycle_event_duration_seconds_sum{event="ApplicationStart",result="Succeeded"}'] >= 1
    assert samples['landfall_command_pickup_seconds_count'] >= 7

    with urllib.request.urlopen(f"http://{agent_metrics}/metrics", timeout=10) as response:
        agent_text = response.read().decode()
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=agent_text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'landfall_agent_lifecycle_event_duration_seconds_count{event="ApplicationStart",result="Succeeded"} 1' \
        in agent_text
    assert 'landfall_agent_polls_total{outcome="command"} 7' in agent_text
