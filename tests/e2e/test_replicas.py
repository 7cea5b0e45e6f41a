"""Landfall as several replicas on PostgreSQL: three `landfall server` processes on one database
behind a real HAProxy, twenty real agents whose connections the balancer spreads over them, and
a deployment that loses the replica owning it (SIGKILL) mid-wave, or its database for a moment,
or has every replica restarted under it in a rolling upgrade, and still finishes with every
host's hooks run exactly once and its history complete. Bundles, console sessions and the
metrics token work through any replica."""

import collections
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cluster import Cluster
from conftest import LANDFALL_BIN, NoRedirect
from hostsim import wait_for, wait_for_status
from realhost import Host, bundle

SERVICE_ROLE = "arn:aws:iam::123456789012:role/landfall"
HOOKS = ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
HOSTS = 20


@pytest.fixture
def cluster(workdir, checker):
    made = Cluster(workdir, checker)
    yield made
    made.close()


def app_bundle(path, version, hook_seconds):
    """Each hook appends `EVENT DEPLOYMENT` to the file its agent names in HOOK_LOG, then takes
    `hook_seconds`: a host's events can be counted whoever handed them out."""
    hook = f'#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> "$HOOK_LOG"\nsleep {hook_seconds}\n'
    appspec = "version: 0.0\nos: linux\nhooks:\n" + "".join(
        f"  {event}:\n    - location: hook.sh\n" for event in HOOKS)
    return bundle(path / f"{version}.tgz", {"appspec.yml": (appspec, 0o644), "hook.sh": (hook, 0o755),
                                              "VERSION": (version, 0o644)})


def start_fleet(cluster, count=HOSTS):
    """Registers `count` hosts (through the first replica) whose agents talk to the balancer."""
    server = cluster.replicas[0]
    hosts = []
    for index in range(count):
        host = Host(server, f"web-{index:02d}", {"role": "web"}, agent_endpoint=cluster.endpoint)
        host.hook_log = host.dir / "hooks.log"
        host.start(HOOK_LOG=str(host.hook_log))
        hosts.append(host)
    return hosts


def stop_fleet(hosts):
    for host in hosts:
        code = host.stop()
        assert "panicked" not in host.log(), host.log()
        assert code in (None, 0), f"{host.name} exited with {code}:\n{host.log()}"


def balanced_client(cluster):
    key_id, secret, region = cluster.replicas[0].admin_key()
    client = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region).client(
        "codedeploy", endpoint_url=cluster.endpoint, config=Config(retries={"max_attempts": 8, "mode": "standard"}))
    cluster.replicas[0].checker.attach(client)
    return client


def setup(cluster, cd, tmp_path, hook_seconds):
    cluster.s3.s3.create_bucket(Bucket="releases")
    etag = cluster.s3.put("releases", "app/v1.tgz", app_bundle(tmp_path, "v1", hook_seconds))
    cd.create_application(applicationName="app")
    # Waves of five: fifteen of the twenty hosts stay healthy while the others deploy.
    cd.create_deployment_config(deploymentConfigName="FiveAtATime",
                                minimumHealthyHosts={"type": "HOST_COUNT", "value": 15})
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="web", serviceRoleArn=SERVICE_ROLE,
        deploymentConfigName="FiveAtATime",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}])
    return {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "app/v1.tgz", "bundleType": "tgz",
                                                 "eTag": etag}}


def hooks_run(host, deployment_id):
    lines = host.hook_log.read_text().splitlines() if host.hook_log.exists() else []
    return collections.Counter(line.split()[0] for line in lines if line.endswith(deployment_id))


def finished_hosts(cd, deployment_id):
    overview = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"].get("deploymentOverview", {})
    return overview.get("Succeeded", 0) + overview.get("Failed", 0)


def assert_complete(cluster, cd, hosts, deployment_id):
    """Every host ran each hook exactly once, and the timeline and audit log say so."""
    for target_id in cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]:
        target = cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
        events = target["instanceTarget"]["lifecycleEvents"]
        summary = [(e["lifecycleEventName"], e["status"], e.get("diagnostics", {}).get("message")) for e in events]
        assert all(e["status"] in ("Succeeded", "Skipped") for e in events), (target_id, summary)
    for host in hosts:
        assert hooks_run(host, deployment_id) == {event: 1 for event in HOOKS}, (host.name, host.log()[-4000:])
    server = cluster.replicas[next(i for i, r in enumerate(cluster.replicas) if r.process)]
    events = server.landfall("events", deployment_id, "--output", "json")
    assert events.ok, events.stderr
    finished = collections.Counter((instance, e.get("lifecycleEvent")) for e in events.json
                                   if e["type"] == "LifecycleEvent" and e.get("status") == "Succeeded"
                                   for instance in e.get("instanceIds", []))
    for host in hosts:
        for event in HOOKS:
            assert finished[(host.name, event)] == 1, (host.name, event, finished)
    statuses = [e.get("status") for e in events.json if e["type"] == "StatusChanged"]
    assert statuses[-1] == "Succeeded" and statuses.count("Succeeded") == 1, statuses
    audit = server.landfall("audit", "--operation", "CreateDeployment", "--output", "json")
    assert audit.ok, audit.stderr
    assert [r.get("result") for r in audit.json] == ["Success"], audit.json


def deploying(cluster, tmp_path):
    """A client through the balancer, the fleet, and a deployment to it under way."""
    cd = balanced_client(cluster)
    revision = setup(cluster, cd, tmp_path, hook_seconds=1)
    hosts = start_fleet(cluster)
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="web",
                                         revision=revision)["deploymentId"]
    return cd, hosts, deployment_id


def test_a_replica_killed_mid_wave_loses_nothing(cluster, tmp_path):
    cd, hosts, deployment_id = deploying(cluster, tmp_path)
    try:
        owner = cluster.lease_holder(f"deployment:{deployment_id}")
        # Mid-wave: the first five hosts are done, the next ones are running their hooks.
        wait_for(lambda: finished_hosts(cd, deployment_id) >= 5, timeout=120, message="the first wave")
        wait_for(lambda: sum(1 for h in hosts if hooks_run(h, deployment_id)) > finished_hosts(cd, deployment_id),
                 timeout=60, message="the second wave to start")
        owner.stop(signal.SIGKILL)
        # Its lease lapses (5 s unrenewed) and another replica takes the deployment.
        wait_for(lambda: cluster.lease_holder(f"deployment:{deployment_id}") is not owner, timeout=30,
                 message="another replica to take the deployment over")
        info = wait_for_status(cd, deployment_id, timeout=240)
        assert info["status"] == "Succeeded", (info, [r.log()[-3000:] for r in cluster.replicas if r.process])
        assert_complete(cluster, cd, hosts, deployment_id)
    finally:
        stop_fleet(hosts)


def is_ready(replica):
    try:
        with urllib.request.urlopen(f"{replica.endpoint}/ready", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_the_database_restarted_mid_deployment(cluster, tmp_path):
    cd, hosts, deployment_id = deploying(cluster, tmp_path)
    try:
        wait_for(lambda: finished_hosts(cd, deployment_id) >= 5, timeout=120, message="the first wave")
        cluster.postgres.stop("fast")
        # Down long enough for every replica to notice (its /ready fails), then back.
        for replica in cluster.replicas:
            wait_for(lambda: not is_ready(replica), timeout=30, message="the replica to notice the outage")
        cluster.postgres.start()
        info = wait_for_status(cd, deployment_id, timeout=240)
        assert info["status"] == "Succeeded", (info, [r.log()[-3000:] for r in cluster.replicas])
        assert_complete(cluster, cd, hosts, deployment_id)
        # Every replica is ready again.
        for replica in cluster.replicas:
            with urllib.request.urlopen(f"{replica.endpoint}/ready", timeout=10) as answer:
                assert answer.status == 200
    finally:
        stop_fleet(hosts)



def test_hosts_drained_through_any_replica_leave_once(cluster, tmp_path):
    cd = balanced_client(cluster)
    revision = setup(cluster, cd, tmp_path, hook_seconds=0)
    hosts = start_fleet(cluster, count=3)
    try:
        first = cd.create_deployment(applicationName="app", deploymentGroupName="web", revision=revision,
                                     deploymentConfigName="CodeDeployDefault.AllAtOnce")["deploymentId"]
        assert wait_for_status(cd, first, timeout=120)["status"] == "Succeeded"
        holder = cluster.lease_holder("fleet")
        answers = {}
        for replica, host in zip(cluster.replicas, hosts):
            status, answer = replica.raw("Landfall_20261122.DrainInstance", {"instanceName": host.name})
            assert status == 200, answer
            answers[host.name] = (replica is holder, answer)
        # The replica tending the fleet starts the termination deployment itself; the others hand
        # the departure over to it.
        for name, (holds, answer) in answers.items():
            assert len(answer["deploymentIds"]) == (1 if holds else 0), (name, holds, answer)

        def registered(name):
            return "deregisterTime" not in cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
        wait_for(lambda: not any(registered(h.name) for h in hosts), timeout=120, message="the hosts to leave")
        # One termination deployment per host, however many replicas saw the departure.
        terminations = collections.Counter()
        for deployment_id in cd.list_deployments(applicationName="app", deploymentGroupName="web")["deployments"]:
            info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["creator"] == "autoscalingTermination":
                assert info["status"] == "Succeeded", info
                terminations.update(cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"])
        assert terminations == {host.name: 1 for host in hosts}
    finally:
        stop_fleet(hosts)


def test_bundles_live_in_the_external_store_whichever_replica_takes_them(cluster, tmp_path):
    first, second, third = cluster.replicas
    # Pushed through one replica (the aws CLI's own push: aws-chunked upload, registration)...
    source = tmp_path / "app"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (source / "index.html").write_text("hello\n")
    assert first.aws("s3", "mb", "s3://bundles").ok
    assert first.aws("deploy", "create-application", "--application-name", "app").ok
    pushed = first.aws("deploy", "push", "--application-name", "app", "--s3-location", "s3://bundles/app/v1.zip",
                       "--source", str(source), "--ignore-hidden-files")
    assert pushed.ok, pushed.stderr
    # ...it is in the external store, readable through any other replica, as written.
    assert [o["Key"] for o in cluster.s3.s3.list_objects_v2(Bucket="bundles")["Contents"]] == ["app/v1.zip"]
    listed = third.aws("s3api", "list-objects-v2", "--bucket", "bundles")
    assert listed.ok and [o["Key"] for o in listed.json["Contents"]] == ["app/v1.zip"], listed.stderr
    downloaded = tmp_path / "v1.zip"
    assert second.aws("s3", "cp", "s3://bundles/app/v1.zip", str(downloaded)).ok
    direct = cluster.s3.s3.get_object(Bucket="bundles", Key="app/v1.zip")["Body"].read()
    assert downloaded.read_bytes() == direct
    partial = second.aws("s3api", "get-object", "--bucket", "bundles", "--key", "app/v1.zip", "--range", "bytes=0-3",
                         str(tmp_path / "head"))
    assert partial.ok and (tmp_path / "head").read_bytes() == direct[:4], partial.stderr
    # A large upload goes in parts (multipart through the replica, completed there).
    large = tmp_path / "large.bin"
    large.write_bytes(bytes(range(256)) * (40 * 1024 * 4))
    assert third.aws("s3", "cp", str(large), "s3://bundles/large.bin").ok
    assert cluster.s3.s3.head_object(Bucket="bundles", Key="large.bin")["ContentLength"] == large.stat().st_size

    # Landfall's roles still decide: a read-only key reads but does not write, and the refusal
    # is in the audit log like any other.
    key = first.landfall("keys", "create", "--role", "read-only", "--output", "json").json["accessKey"]
    credentials = tmp_path / "read-only-credentials"
    credentials.write_text(f"[reader]\naws_access_key_id = {key['accessKeyId']}\n"
                           f"aws_secret_access_key = {key['secretAccessKey']}\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "reader"}
    refused = second.aws("s3", "cp", str(downloaded), "s3://bundles/other.bin", env=env)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    assert "other.bin" not in [o["Key"] for o in cluster.s3.s3.list_objects_v2(Bucket="bundles")["Contents"]]
    audit = first.landfall("audit", "--operation", "S3.PutObject", "--output", "json").json
    assert [(r["resources"].get("key"), r["result"]) for r in audit if r["accessKeyId"] == key["accessKeyId"]] == \
        [("other.bin", "AccessDenied")]
    # Unknown buckets and keys are the external store's answers.
    missing = second.aws("s3api", "head-object", "--bucket", "bundles", "--key", "nope")
    assert missing.returncode != 0 and "404" in missing.stderr

    # A console session made by one replica is good on the others (the secret is shared), and
    # so is the metrics token.
    key_id, secret, _ = first.admin_key()
    signed_in = urllib.request.Request(first.endpoint + "/console/login", method="POST", headers={
        "Origin": first.endpoint}, data=urllib.parse.urlencode(
            {"access_key_id": key_id, "secret_access_key": secret}).encode())
    try:
        urllib.request.build_opener(NoRedirect()).open(signed_in, timeout=10)
        raise AssertionError("signing in answers with a redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code == 303
        session = answer.headers["Set-Cookie"].split(";")[0]
    page = urllib.request.Request(third.endpoint + "/console/deployments", headers={"Cookie": session})
    with urllib.request.build_opener(NoRedirect()).open(page, timeout=10) as answer:
        html = answer.read().decode()
        assert answer.status == 200 and "Deployments" in html
    # Signing out through another replica ends the session on every one of them.
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    sign_out = urllib.request.Request(second.endpoint + "/console/logout", method="POST", headers={
        "Origin": second.endpoint, "Cookie": session}, data=urllib.parse.urlencode({"csrf": csrf}).encode())
    try:
        urllib.request.build_opener(NoRedirect()).open(sign_out, timeout=10)
        raise AssertionError("signing out answers with a redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code == 303 and answer.headers["Location"] == "/console/login"
    for replica in (first, third):
        again = urllib.request.Request(replica.endpoint + "/console/deployments", headers={"Cookie": session})
        try:
            urllib.request.build_opener(NoRedirect()).open(again, timeout=10)
            raise AssertionError("the session outlived its sign-out")
        except urllib.error.HTTPError as answer:
            assert answer.code == 303 and answer.headers["Location"].startswith("/console/login")
    token = cluster.postgres.sql("SELECT value FROM meta WHERE key = 'secret:metrics-token'")[0][0]
    scrape = urllib.request.Request(second.endpoint + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(scrape, timeout=10) as answer:
        assert "landfall_api_requests_total" in answer.read().decode()

    # The store check reads the shared database's schema version, without changing anything.
    def check(url):
        return subprocess.run([LANDFALL_BIN, "server", "--data-dir", str(tmp_path / "check"), "--store", url,
                               "--check-store"],
                              capture_output=True, text=True, env={**first._clean_env(), **cluster.s3.server_env()})
    shared = check(cluster.postgres.url)
    assert shared.returncode == 0 and "PostgreSQL store: schema version" in shared.stdout \
        and "as this Landfall expects: ok" in shared.stdout, shared.stderr
    cluster.postgres.sql("CREATE DATABASE empty")
    empty = check(cluster.postgres.url.rsplit("/", 1)[0] + "/empty")
    assert empty.returncode == 1 and "no PostgreSQL store yet" in empty.stderr, empty.stderr
    unreachable = check("postgres://landfall@127.0.0.1:1/postgres")
    assert unreachable.returncode == 1 and "cannot be read" in unreachable.stderr, unreachable.stderr


def test_a_rolling_upgrade_across_a_schema_migration(cluster, tmp_path):
    """Replicas restarted one at a time while a deployment runs, after a newer release migrated
    the database. The newer release is played by SQL doing what a newer Landfall's start does
    (an additive migration, recorded with the oldest schema version that still runs on it), so
    what is exercised is this release's side: it keeps serving on, and restarts onto, a newer
    schema that says it can, gives its leases up when stopped, and refuses one that says not."""
    cd = balanced_client(cluster)
    revision = setup(cluster, cd, tmp_path, hook_seconds=1)
    cd.update_deployment_group(applicationName="app", currentDeploymentGroupName="web",
                               deploymentConfigName="CodeDeployDefault.OneAtATime")
    hosts = start_fleet(cluster, count=6)
    try:
        known = int(cluster.postgres.sql("SELECT MAX(version) FROM schema_migrations")[0][0])
        deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="web",
                                             revision=revision)["deploymentId"]
        wait_for(lambda: finished_hosts(cd, deployment_id) >= 1, timeout=120, message="the first host")
        newer = known + 1
        cluster.postgres.sql(
            "BEGIN; CREATE TABLE deployment_notes (deployment_id TEXT PRIMARY KEY, note TEXT NOT NULL); "
            f"INSERT INTO schema_migrations (version, applied_at) VALUES ({newer}, 0); "
            f"INSERT INTO meta (key, value) VALUES ('schema_compatible_from:{newer}', '{known}'); COMMIT")
        lease = f"deployment:{deployment_id}"
        for replica in cluster.replicas:
            holder = cluster.holder(lease)
            address = replica.endpoint.split("://", 1)[1]
            replica.stop()
            if holder and holder.startswith(f"{address}/"):
                # It gave the deployment up as it stopped, rather than leave it for its lease to lapse.
                assert cluster.holder(lease) != holder
            cluster.start(replica, listen=address)
            wait_for(lambda: urllib.request.urlopen(f"{replica.endpoint}/ready", timeout=5).status == 200,
                     timeout=30, message="the restarted replica to be ready")
        info = wait_for_status(cd, deployment_id, timeout=240)
        assert info["status"] == "Succeeded", info
        for host in hosts:
            assert hooks_run(host, deployment_id) == {event: 1 for event in HOOKS}, host.name

        def check():
            return subprocess.run([LANDFALL_BIN, "server", "--data-dir", str(tmp_path / "check"), "--store",
                                   cluster.postgres.url, "--check-store"], capture_output=True, text=True,
                                  env={**cluster.replicas[0]._clean_env(), **cluster.s3.server_env()})
        compatible = check()
        assert compatible.returncode == 0, compatible.stderr
        assert f"schema version {newer}, newer than this Landfall knows ({known}) but made to work with it" \
            in compatible.stdout

        # A release whose migration older ones cannot run on says so; this one then refuses to start.
        cluster.postgres.sql(f"UPDATE meta SET value = '{newer}' WHERE key = 'schema_compatible_from:{newer}'")
        refused = check()
        assert refused.returncode == 1 and "not usable by it: upgrade Landfall" in refused.stderr, refused.stderr
        first = cluster.replicas[0]
        first.stop()
        with pytest.raises(RuntimeError, match="not usable by it"):
            cluster.start(first, listen=first.endpoint.split("://", 1)[1])
    finally:
        stop_fleet(hosts)


def test_a_key_revoked_through_one_replica_is_refused_by_the_others(cluster):
    """Each replica keeps the keys it has seen, as long as its looks for revoked keys run; a key
    revoked through another replica is refused once the next look finds it (every 2 s), not
    when a cached entry would have grown old."""
    first, second = cluster.replicas[0], cluster.replicas[1]
    created = first.landfall("keys", "create", "--role", "read-only", "--description", "revoked elsewhere")
    assert created.ok, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.strip().splitlines())
    key_id, secret = fields["access key id"].strip(), fields["secret access key"].strip()
    reader = second.client(key_id, secret)
    assert reader.list_applications()["applications"] == []

    assert first.landfall("keys", "revoke", key_id).ok

    def refused():
        try:
            reader.list_applications()
            return False
        except ClientError as error:
            assert error.response["Error"]["Code"] == "UnrecognizedClientException", error.response
            return True

    wait_for(refused, timeout=15, message="the other replica to refuse the revoked key")
