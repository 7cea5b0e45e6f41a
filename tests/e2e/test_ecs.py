"""ECS blue/green deployments carried out through the ECS and ELBv2 APIs of a local AWS
implementation (moto): the replacement task set created from the AppSpec, the test listener
switched, the production listener's weights moved as the configuration says, the ready and
termination waits, the original task set deleted, and rollbacks sending everything back. The aws
CLI drives Landfall; the test reads the listeners and task sets from moto as a user would from
AWS."""

import json
import re

import pytest

from hostsim import wait_for, wait_for_status

ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"
CLUSTER = "web"
SERVICE = "shop"
TARGET = f"{CLUSTER}:{SERVICE}"


class Ecs:
    """moto's side: a load balancer with a production and a test listener, two target groups, a
    cluster whose service runs task definition shop:1 in its PRIMARY task set behind `blue`."""

    def __init__(self, moto):
        self.moto = moto
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
                   for i, zone in enumerate("ab")]
        self.elb = moto.client("elbv2")
        lb = self.elb.create_load_balancer(Name="shop", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        self.groups = {}
        for name in ("blue", "green"):
            made = self.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
            self.groups[name] = made["TargetGroups"][0]["TargetGroupArn"]
        forward_blue = [{"Type": "forward", "TargetGroupArn": self.groups["blue"]}]
        self.production = self.elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                                   DefaultActions=forward_blue)["Listeners"][0]["ListenerArn"]
        self.test = self.elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=8080,
                                             DefaultActions=forward_blue)["Listeners"][0]["ListenerArn"]
        self.ecs = moto.client("ecs")
        self.ecs.create_cluster(clusterName=CLUSTER)
        container = {"name": "web", "image": "shop", "memory": 128, "portMappings": [{"containerPort": 80}]}
        self.revisions = [self.ecs.register_task_definition(
            family="shop", containerDefinitions=[{**container, "image": f"shop:{v}"}])["taskDefinition"]
            ["taskDefinitionArn"] for v in (1, 2)]
        self.ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, desiredCount=2,
                                deploymentController={"type": "EXTERNAL"})
        original = self.ecs.create_task_set(
            cluster=CLUSTER, service=SERVICE, taskDefinition=self.revisions[0], launchType="EC2",
            loadBalancers=[{"targetGroupArn": self.groups["blue"], "containerName": "web", "containerPort": 80}])
        self.original = original["taskSet"]["id"]
        self.ecs.update_service_primary_task_set(cluster=CLUSTER, service=SERVICE,
                                                 primaryTaskSet=original["taskSet"]["taskSetArn"])

    def weights(self, listener):
        """Where a listener sends traffic: {target group name: weight}."""
        names = {arn: name for name, arn in self.groups.items()}
        action = self.elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
        groups = action.get("ForwardConfig", {}).get("TargetGroups")
        if not groups:
            return {names[action["TargetGroupArn"]]: 100}
        return {names[g["TargetGroupArn"]]: g.get("Weight", 1) for g in groups if g.get("Weight", 1) > 0}

    def task_sets(self):
        """{task definition revision: (task set id, status)} of the service's task sets."""
        sets = self.ecs.describe_task_sets(cluster=CLUSTER, service=SERVICE)["taskSets"]
        return {s["taskDefinition"].rsplit(":", 1)[1]: (s["id"], s["status"]) for s in sets}

    def hook(self, name):
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        iam = self.moto.client("iam")
        role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        self.moto.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                                   Handler="index.handler", Code={"ZipFile": b"not run"})


@pytest.fixture
def platform(moto, landfall_factory):
    server = landfall_factory(start=False)
    server.start(env=moto.server_env())
    ecs = Ecs(moto)
    made = server.aws("deploy", "create-application", "--application-name", "shop", "--compute-platform", "ECS")
    assert made.ok, made.stderr
    return server, ecs


def create_group(server, ecs, ready=None, termination_minutes=0, rollback=False):
    """The deployment group of the service; `ready`: minutes the deployment waits in Ready."""
    options = {"terminateBlueInstancesOnDeploymentSuccess": {
        "action": "TERMINATE", "terminationWaitTimeInMinutes": termination_minutes}}
    options["deploymentReadyOption"] = ({"actionOnTimeout": "CONTINUE_DEPLOYMENT"} if ready is None else
                                        {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": ready})
    pair = {"targetGroups": [{"name": "blue"}, {"name": "green"}],
            "prodTrafficRoute": {"listenerArns": [ecs.production]},
            "testTrafficRoute": {"listenerArns": [ecs.test]}}
    args = ["deploy", "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "shop",
            "--service-role-arn", ROLE, "--deployment-config-name", "CodeDeployDefault.ECSAllAtOnce",
            "--ecs-services", f"serviceName={SERVICE},clusterName={CLUSTER}",
            "--deployment-style", "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
            "--blue-green-deployment-configuration", json.dumps(options),
            "--load-balancer-info", json.dumps({"targetGroupPairInfoList": [pair]})]
    if rollback:
        args += ["--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_REQUEST"]
    made = server.aws(*args)
    assert made.ok, made.stderr


def appspec(ecs, hooks=()):
    text = ("version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n"
            f"        TaskDefinition: \"{ecs.revisions[1]}\"\n"
            "        LoadBalancerInfo:\n          ContainerName: web\n          ContainerPort: 80\n")
    if hooks:
        text += "Hooks:\n" + "".join(f"  - {event}: {function}\n" for event, function in hooks)
    return text


def deploy(server, ecs, hooks=(), config=None):
    revision = json.dumps({"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(ecs, hooks)}})
    args = ["deploy", "create-deployment", "--application-name", "shop", "--deployment-group-name", "shop",
            "--revision", revision]
    if config:
        args += ["--deployment-config-name", config]
    made = server.aws(*args)
    assert made.ok, made.stderr
    return made.json["deploymentId"]


def target(server, deployment_id):
    got = server.aws("deploy", "get-deployment-target", "--deployment-id", deployment_id, "--target-id", TARGET)
    assert got.ok, got.stderr
    found = got.json["deploymentTarget"]
    assert found["deploymentTargetType"] == "ECSTarget" and "instanceTarget" not in found, found
    return found["ecsTarget"]


def task_set_info(ecs_target):
    return {t["taskSetLabel"]: (t["identifer"], t["status"], t["trafficWeight"], t["targetGroup"]["name"])
            for t in ecs_target["taskSetsInfo"]}


def deployment(server, deployment_id):
    got = server.aws("deploy", "get-deployment", "--deployment-id", deployment_id)
    assert got.ok, got.stderr
    return got.json["deploymentInfo"]


def test_a_canary_moves_the_listener_weights_then_replaces_the_original_task_set(platform):
    server, ecs = platform
    create_group(server, ecs)
    made = server.aws("deploy", "create-deployment-config", "--deployment-config-name", "Canary20Percent1Minute",
                      "--compute-platform", "ECS", "--traffic-routing-config", json.dumps({
                          "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 1}}))
    assert made.ok, made.stderr
    deployment_id = deploy(server, ecs, config="Canary20Percent1Minute")
    # The replacement task set runs shop:2 behind the other target group; the test listener
    # goes there first, production traffic is split 80/20.
    wait_for(lambda: ecs.weights(ecs.production) == {"blue": 80, "green": 20}, timeout=30,
             message="the canary's weights")
    assert ecs.weights(ecs.test) == {"green": 100}
    sets = ecs.task_sets()
    assert sets["1"] == (ecs.original, "PRIMARY") and sets["2"][1] == "ACTIVE", sets
    shown = target(server, deployment_id)
    assert task_set_info(shown) == {"Blue": (ecs.original, "PRIMARY", 80.0, "blue"),
                                    "Green": (sets["2"][0], "ACTIVE", 20.0, "green")}
    events = {e["lifecycleEventName"]: e["status"] for e in shown["lifecycleEvents"]}
    assert events["Install"] == events["AllowTestTraffic"] == "Succeeded" and events["AllowTraffic"] == "InProgress"
    # The console's deployment page shows the task sets and their traffic.
    page = server.console_page(f"/console/deployments/{deployment_id}")
    traffic = re.findall(r"<td[^>]*>(.*?)</td>", page.split("<h2>Traffic</h2>", 1)[1].split("<h2>", 1)[0])
    assert traffic == [ecs.original, "Blue", "PRIMARY", "80", "blue", sets["2"][0], "Green", "ACTIVE", "20", "green"]
    assert shown["targetArn"].endswith(f"service/{CLUSTER}/{SERVICE}")
    # After the minute: everything on the replacement, which is PRIMARY; the original is gone.
    info = wait_for_status(server.client(), deployment_id, timeout=120)
    assert info["status"] == "Succeeded", info
    assert ecs.weights(ecs.production) == {"green": 100}
    assert ecs.task_sets() == {"2": (sets["2"][0], "PRIMARY")}
    shown = target(server, deployment_id)
    assert [(e["lifecycleEventName"], e["status"]) for e in shown["lifecycleEvents"]] == [
        (name, "Succeeded") for name in ("BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic",
                                         "AfterAllowTestTraffic", "BeforeAllowTraffic", "AllowTraffic",
                                         "AfterAllowTraffic")]
    assert task_set_info(shown)["Green"][1:3] == ("PRIMARY", 100.0)

    # The next deployment goes the other way: from the green target group back to blue.
    again = deploy(server, ecs)
    assert wait_for_status(server.client(), again, timeout=60)["status"] == "Succeeded"
    assert ecs.weights(ecs.production) == {"blue": 100} and ecs.weights(ecs.test) == {"blue": 100}
    assert [status for _, status in ecs.task_sets().values()] == ["PRIMARY"]


def test_a_failed_hook_rolls_back_to_the_original_task_set(platform, moto):
    server, ecs = platform
    create_group(server, ecs, rollback=True)
    ecs.hook("CodeDeployHook_check")
    deployment_id = deploy(server, ecs, hooks=[("AfterAllowTestTraffic", "CodeDeployHook_check")])

    def invoked():
        calls = [c for c in moto.invocations("CodeDeployHook_check") if c.get("DeploymentId") == deployment_id]
        return calls[0]["LifecycleEventHookExecutionId"] if calls else None
    execution = wait_for(invoked, timeout=30, message="the hook to be invoked")
    # The test listener already sends its traffic to the replacement; production does not.
    assert ecs.weights(ecs.test) == {"green": 100} and ecs.weights(ecs.production) == {"blue": 100}
    assert len(ecs.task_sets()) == 2
    reported = server.aws("deploy", "put-lifecycle-event-hook-execution-status", "--deployment-id", deployment_id,
                          "--lifecycle-event-hook-execution-id", execution, "--status", "Failed")
    assert reported.ok, reported.stderr
    failed = wait_for_status(server.client(), deployment_id, timeout=30)
    assert (failed["status"], failed["errorInformation"]["code"]) == ("Failed", "HOOK_EXECUTION_FAILURE"), failed
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    rollback = wait_for_status(server.client(), rollback_id, timeout=60)
    assert rollback["status"] == "Succeeded" and rollback["creator"] == "codeDeployRollback", rollback
    assert ecs.weights(ecs.test) == {"blue": 100} and ecs.weights(ecs.production) == {"blue": 100}
    assert ecs.task_sets() == {"1": (ecs.original, "PRIMARY")}
    shown = target(server, rollback_id)
    assert [e["lifecycleEventName"] for e in shown["lifecycleEvents"]] == [
        "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert task_set_info(shown)["Blue"][:3] == (ecs.original, "PRIMARY", 100.0)
    # Each hook runs once: the rollback invoked nothing.
    assert len(moto.invocations("CodeDeployHook_check")) == 1


def test_ready_and_termination_waits_hold_until_continued(platform):
    server, ecs = platform
    create_group(server, ecs, ready=60, termination_minutes=60)
    deployment_id = deploy(server, ecs)
    wait_for(lambda: deployment(server, deployment_id)["status"] == "Ready", timeout=30, message="Ready")
    # Installed and reachable through the test listener; production untouched.
    assert ecs.weights(ecs.test) == {"green": 100} and ecs.weights(ecs.production) == {"blue": 100}
    statuses = {e["lifecycleEventName"]: e["status"] for e in target(server, deployment_id)["lifecycleEvents"]}
    assert statuses["AfterAllowTestTraffic"] == "Succeeded" and statuses["BeforeAllowTraffic"] == "Pending"
    continued = server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id,
                           "--deployment-wait-type", "READY_WAIT")
    assert continued.ok, continued.stderr
    wait_for(lambda: deployment(server, deployment_id).get("instanceTerminationWaitTimeStarted"), timeout=30,
             message="the termination wait")
    assert ecs.weights(ecs.production) == {"green": 100}
    # The original task set is kept through the wait (a rollback could still use it).
    assert sorted(status for _, status in ecs.task_sets().values()) == ["ACTIVE", "PRIMARY"]
    assert deployment(server, deployment_id)["status"] == "InProgress"
    ended = server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id,
                       "--deployment-wait-type", "TERMINATION_WAIT")
    assert ended.ok, ended.stderr
    assert wait_for_status(server.client(), deployment_id, timeout=30)["status"] == "Succeeded"
    assert list(ecs.task_sets()) == ["2"]


def test_a_stop_during_the_canary_rolls_back(platform):
    server, ecs = platform
    create_group(server, ecs, rollback=True)
    deployment_id = deploy(server, ecs, config="CodeDeployDefault.ECSCanary10Percent5Minutes")
    wait_for(lambda: ecs.weights(ecs.production) == {"blue": 90, "green": 10}, timeout=30,
             message="the canary's weights")
    stopped = server.aws("deploy", "stop-deployment", "--deployment-id", deployment_id, "--auto-rollback-enabled")
    assert stopped.ok, stopped.stderr
    info = wait_for_status(server.client(), deployment_id, timeout=30)
    assert info["status"] == "Stopped", info
    rollback = wait_for_status(server.client(), info["rollbackInfo"]["rollbackDeploymentId"], timeout=60)
    assert rollback["status"] == "Succeeded", rollback
    assert ecs.weights(ecs.production) == {"blue": 100} and ecs.weights(ecs.test) == {"blue": 100}
    assert ecs.task_sets() == {"1": (ecs.original, "PRIMARY")}


def test_a_bad_appspec_is_refused_at_create_deployment(platform):
    server, ecs = platform
    create_group(server, ecs)
    bad = appspec(ecs).replace("ContainerPort: 80", "ContainerPort: eighty")
    revision = json.dumps({"revisionType": "AppSpecContent", "appSpecContent": {"content": bad}})
    made = server.aws("deploy", "create-deployment", "--application-name", "shop", "--deployment-group-name", "shop",
                      "--revision", revision)
    assert not made.ok and "InvalidRevisionException" in made.stderr and "ContainerPort" in made.stderr, made.stderr
    assert len(ecs.task_sets()) == 1
