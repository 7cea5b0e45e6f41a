"""Triggers as signed webhooks: a group's triggerConfigurations, an SNS topic ARN mapped to the
receiver's URL by the server's configuration. The receiver refuses the first deliveries; it still
gets every subscribed event exactly once per message id, in order per deployment, each signed."""

import json

import pytest

from hostsim import wait_for, wait_for_status
from monitoring import WebhookReceiver, deploy, revision, setup_group

SECRET = "trigger-test-secret-0123456789"
TOPIC = "arn:aws:sns:us-east-1:123456789012:deployments"
ALL_EVENTS = ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback",
              "DeploymentReady", "InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady"]


@pytest.fixture
def receiver():
    receiver = WebhookReceiver(SECRET, refuse=3)
    yield receiver
    receiver.stop()


@pytest.fixture
def server(landfall_factory, receiver, tmp_path):
    secret_file = tmp_path / "trigger-secret"
    secret_file.write_text(SECRET + "\n")
    server = landfall_factory(start=False)
    return server.start("--trigger-secret-file", str(secret_file), "--sns-topic", f"{TOPIC}={receiver.url}")


def failing_revision(tmp_path, version):
    from realhost import bundle

    appspec = "version: 0.0\nos: linux\nhooks:\n  ValidateService:\n    - location: fail.sh\n"
    return bundle(tmp_path / f"{version}.tgz", {"appspec.yml": (appspec, 0o644),
                                                "fail.sh": ("#!/bin/sh\necho broken >&2\nexit 3\n", 0o755)})


def test_every_trigger_arrives_once_in_order_and_signed(server, cd, hosts, receiver, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    names = ["web-1", "web-2"]
    for name in names:
        hosts(name, start=False, role="web").start(TEST_HOST=name, OUT_DIR=str(out))
    triggers = json.dumps([{"triggerName": "chatops", "triggerTargetArn": TOPIC, "triggerEvents": ALL_EVENTS}])
    rollback = json.dumps({"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    setup_group(server, extra=("--trigger-configurations", triggers, "--auto-rollback-configuration", rollback))

    good = deploy(server, revision(tmp_path, "v1"))
    assert wait_for_status(cd, good)["status"] == "Succeeded"
    bad = deploy(server, failing_revision(tmp_path, "v2"))
    failed = wait_for_status(cd, bad)
    assert failed["status"] == "Failed"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    assert wait_for_status(cd, rollback_id)["status"] == "Succeeded"

    def received(deployment, event):
        return [n for n in receiver.notifications() if n[2]["deploymentId"] == deployment and n[0] == event]

    # Each deployment's messages wait for its own refused ones; the last of each ends its queue.
    for deployment, last in [(good, "DeploymentSuccess"), (bad, "DeploymentRollback"), (rollback_id, "DeploymentSuccess")]:
        wait_for(lambda: received(deployment, last), 60, message=f"{deployment}'s {last} to be delivered")
    notifications = receiver.notifications()
    assert receiver.attempts > len(notifications), "the first deliveries were refused and retried"
    assert not receiver.bad_signatures
    # Each message once: repeats would share a message id.
    ids = [envelope["MessageId"] for _, envelope, _ in notifications]
    assert len(ids) == len(set(ids))

    def sequence(deployment):
        # Instance ARNs end in instance/<name>_<id>.
        return [(event, message.get("instanceId", "").rsplit("/", 1)[-1].split("_")[0])
                for event, _, message in notifications if message["deploymentId"] == deployment]

    # OneAtATime: each host starts and finishes before the next starts, between the deployment's
    # start and its end.
    assert sequence(good) == [("DeploymentStart", ""), ("InstanceStart", "web-1"), ("InstanceSuccess", "web-1"),
                              ("InstanceStart", "web-2"), ("InstanceSuccess", "web-2"), ("DeploymentSuccess", "")]
    failure = sequence(bad)
    assert failure[0] == ("DeploymentStart", "")
    assert ("InstanceFailure", "web-1") in failure
    assert failure[-2:] == [("DeploymentFailure", ""), ("DeploymentRollback", "")]
    assert sequence(rollback_id)[0] == ("DeploymentStart", "")
    assert sequence(rollback_id)[-1] == ("DeploymentSuccess", "")

    # The fields CodeDeploy's SNS messages carry.
    (_, envelope, message), = received(good, "DeploymentSuccess")
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == TOPIC
    assert envelope["Subject"].startswith("SUCCEEDED: AWS CodeDeploy " + good)
    assert message["eventTriggerName"] == "chatops"
    assert (message["applicationName"], message["deploymentGroupName"], message["status"]) == ("shop", "web", "SUCCEEDED")
    assert message["deploymentOverview"] == {"Failed": "0", "InProgress": "0", "Pending": "0", "Skipped": "0",
                                             "Succeeded": "2"}
    assert int(message["completeTime"]) >= int(message["createTime"]) > 1_700_000_000
    assert message["region"] == "us-east-1" and len(message["accountId"]) == 12
    (_, _, instance), = received(bad, "InstanceFailure")
    instance_arn = cd.get_on_premises_instance(instanceName="web-1")["instanceInfo"]["instanceArn"]
    assert instance["instanceId"] == instance_arn
    assert instance["instanceStatus"] == "Failed"
    statuses = {e["LifecycleEvent"]: e["LifecycleEventStatus"] for e in instance["lifecycleEvents"]}
    assert statuses["ValidateService"] == "Failed" and statuses["Install"] == "Succeeded"
    (_, _, failure_message), = received(bad, "DeploymentFailure")
    assert failure_message["errorInformation"]["ErrorCode"] == "HEALTH_CONSTRAINTS"

    # A signature made with another secret, or over another body, does not check out.
    headers, envelope = receiver.accepted[0]
    body = json.dumps(envelope)
    assert not receiver.signed(headers["x-landfall-signature"], body + " ")


def test_a_server_can_refuse_trigger_urls(landfall_factory):
    server = landfall_factory(start=False).start("--no-trigger-urls", "--sns-topic", f"{TOPIC}=http://127.0.0.1:9/")
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok

    def group(name, target):
        triggers = json.dumps([{"triggerName": "t", "triggerTargetArn": target, "triggerEvents": ["DeploymentStart"]}])
        return server.aws("deploy", "create-deployment-group", "--application-name", "shop",
                          "--deployment-group-name", name, "--service-role-arn", "arn:aws:iam::123456789012:role/x",
                          "--trigger-configurations", triggers)

    refused = group("direct", "http://10.0.0.1/hook")
    assert not refused.ok and "InvalidTriggerConfigException" in refused.stderr and "--sns-topic" in refused.stderr
    assert group("mapped", TOPIC).ok
