"""Deployment groups: Create, Get, BatchGet, List, Update and Delete, through boto3 and the aws CLI.

Each test starts its own server, so names can repeat freely between tests.
"""

import copy
import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import refusal

ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"
OTHER_ROLE = "arn:aws:iam::123456789012:role/service-role/CodeDeployOther"
TOPIC = "arn:aws:sns:us-east-1:123456789012:deployments"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
TEST_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/0467ef3c8400ae65"
CREATE = "CodeDeploy_20141006.CreateDeploymentGroup"

# What every group shows for the settings it was never given.
EMPTY = {
    "ec2TagFilters": [],
    "onPremisesInstanceTagFilters": [],
    "autoScalingGroups": [],
    "triggerConfigurations": [],
    "alarmConfiguration": {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []},
    "autoRollbackConfiguration": {"enabled": False},
    "outdatedInstancesStrategy": "UPDATE",
    "ec2TagSet": {"ec2TagSetList": []},
    "onPremisesTagSet": {"onPremisesTagSetList": []},
    "terminationHookEnabled": False,
}
BLUE_GREEN_TRAFFIC = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}


def ecs_target_groups(blue="blue-tg", green="green-tg", test_route=False):
    pair = {
        "targetGroups": [{"name": blue}, {"name": green}],
        "prodTrafficRoute": {"listenerArns": [LISTENER]},
    }
    if test_route:
        pair["testTrafficRoute"] = {"listenerArns": [TEST_LISTENER]}
    return {"targetGroupPairInfoList": [pair]}


def ecs_fields(service="web", cluster="prod"):
    return {
        "ecsServices": [{"serviceName": service, "clusterName": cluster}],
        "loadBalancerInfo": ecs_target_groups(),
    }


def make_app(cd, name="app", platform="Server"):
    cd.create_application(applicationName=name, computePlatform=platform)
    return name


def create(cd, app="app", name="group", **fields):
    fields.setdefault("serviceRoleArn", ROLE)
    return cd.create_deployment_group(applicationName=app, deploymentGroupName=name, **fields)["deploymentGroupId"]


def get(cd, app="app", name="group"):
    return cd.get_deployment_group(applicationName=app, deploymentGroupName=name)["deploymentGroupInfo"]


def refused_code(call, **kwargs):
    return refusal(call, **kwargs)[0]


def assert_missing(cd, app="app", name="group"):
    assert refused_code(cd.get_deployment_group, applicationName=app, deploymentGroupName=name) == (
        "DeploymentGroupDoesNotExistException"
    )
    assert name not in cd.list_deployment_groups(applicationName=app)["deploymentGroups"]


def cli_ok(result):
    assert result.ok, result.stderr
    return result.json


def make_pools(server, *names):
    """Landfall's autoScalingGroups name host pools: these tests' groups need theirs to exist."""
    for name in names:
        cli_ok(server.landfall("pool", "create", name, "--output", "json"))


UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def pool_names(asgs, group="group", termination=False):
    """The names of a group's autoScalingGroups entries, checking each has its launch hook (and its
    termination hook exactly when terminationHookEnabled) named as CodeDeploy names them."""
    for asg in asgs:
        assert re.fullmatch(f"CodeDeploy-managed-automatic-launch-deployment-hook-{group}-{UUID}", asg["hook"]), asg
        if termination:
            assert re.fullmatch(
                f"CodeDeploy-managed-automatic-termination-deployment-hook-{group}-{UUID}", asg["terminationHook"]), asg
        else:
            assert "terminationHook" not in asg, asg
    return [asg["name"] for asg in asgs]


# -- Create and Get: defaults per compute platform ------------------------------------------------


def test_server_group_defaults(cd):
    make_app(cd)
    group_id = create(cd)
    assert str(uuid.UUID(group_id)) == group_id
    assert get(cd) == {
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "serviceRoleArn": ROLE,
        "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
        "computePlatform": "Server",
        **EMPTY,
    }


def test_lambda_group_defaults(cd):
    make_app(cd, platform="Lambda")
    group_id = create(cd)
    assert get(cd) == {
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce",
        "serviceRoleArn": ROLE,
        "deploymentStyle": BLUE_GREEN_TRAFFIC,
        "computePlatform": "Lambda",
        **EMPTY,
    }


def test_ecs_group_defaults(cd):
    make_app(cd, platform="ECS")
    group_id = create(cd, **ecs_fields())
    assert get(cd) == {
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce",
        "serviceRoleArn": ROLE,
        "deploymentStyle": BLUE_GREEN_TRAFFIC,
        "computePlatform": "ECS",
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
        },
        "ecsServices": [{"serviceName": "web", "clusterName": "prod"}],
        "loadBalancerInfo": ecs_target_groups(),
        **EMPTY,
    }


def test_blue_green_server_group_gets_blue_green_defaults(cd):
    make_app(cd)
    create(cd, deploymentStyle=BLUE_GREEN_TRAFFIC, loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]})
    assert get(cd)["blueGreenDeploymentConfiguration"] == {
        "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
        "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0},
        "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
    }
    # The longest waits are accepted (two days on Server; five days of ready wait on ECS).
    longest = {
        "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 2880},
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 2880},
        "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
    }
    create(cd, name="patient", deploymentStyle=BLUE_GREEN_TRAFFIC, loadBalancerInfo=ELB,
           blueGreenDeploymentConfiguration=longest)
    assert get(cd, name="patient")["blueGreenDeploymentConfiguration"] == longest


def test_blue_green_server_group_without_an_option_routes_traffic(cd):
    """A blue/green group always routes traffic; leaving the option out must not store the one
    combination the server refuses, which would make every later update of the group fail."""
    make_app(cd)
    create(cd, deploymentStyle={"deploymentType": "BLUE_GREEN"}, loadBalancerInfo={"elbInfoList": [{"name": "web"}]})
    assert get(cd)["deploymentStyle"] == BLUE_GREEN_TRAFFIC
    cd.update_deployment_group(applicationName="app", currentDeploymentGroupName="group", serviceRoleArn=OTHER_ROLE)
    assert get(cd)["serviceRoleArn"] == OTHER_ROLE


# -- Create and Get: every field round-trips ------------------------------------------------------

FULL_SERVER = {
    "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
    "onPremisesInstanceTagFilters": [
        {"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"},
        {"Key": "Canary", "Type": "KEY_ONLY"},
    ],
    "ec2TagSet": {
        "ec2TagSetList": [
            [{"Key": "Name", "Value": "web", "Type": "KEY_AND_VALUE"}, {"Value": "blue", "Type": "VALUE_ONLY"}],
            [{"Key": "Team", "Type": "KEY_ONLY"}],
        ]
    },
    "autoScalingGroups": ["web-asg-a", "web-asg-b"],
    "triggerConfigurations": [
        {"triggerName": "ops", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentFailure", "DeploymentRollback"]},
        {"triggerName": "hosts", "triggerTargetArn": TOPIC + "-hosts", "triggerEvents": ["InstanceFailure"]},
    ],
    "alarmConfiguration": {"enabled": True, "ignorePollAlarmFailure": True, "alarms": [{"name": "cpu"}, {"name": "5xx"}]},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    "outdatedInstancesStrategy": "IGNORE",
    "deploymentStyle": BLUE_GREEN_TRAFFIC,
    "blueGreenDeploymentConfiguration": {
        "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE", "terminationWaitTimeInMinutes": 120},
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 45},
        "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
    },
    "loadBalancerInfo": {"elbInfoList": [{"name": "classic"}], "targetGroupInfoList": [{"name": "tg-a"}, {"name": "tg-b"}]},
    "terminationHookEnabled": True,
}


def test_full_server_group_round_trips_every_field(server, cd):
    make_app(cd)
    make_pools(server, "web-asg-a", "web-asg-b")
    group_id = create(cd, tags=[{"Key": "team", "Value": "web"}], **FULL_SERVER)
    expected = {
        **EMPTY,
        **FULL_SERVER,
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "serviceRoleArn": ROLE,
        "computePlatform": "Server",
    }
    info = get(cd)
    assert pool_names(info.pop("autoScalingGroups"), termination=True) == ["web-asg-a", "web-asg-b"]
    del expected["autoScalingGroups"]
    assert info == expected
    assert cd.list_tags_for_resource(ResourceArn=group_arn(cd, "app", "group"))["Tags"] == [{"Key": "team", "Value": "web"}]


def group_arn(cd, app, name):
    """The group's ARN, with the server's account id (read from a registered instance's ARN)."""
    cd.register_on_premises_instance(instanceName="arn-probe", iamUserArn="arn:aws:iam::123456789012:user/probe")
    instance_arn = cd.get_on_premises_instance(instanceName="arn-probe")["instanceInfo"]["instanceArn"]
    _, partition, _, region, account, _ = instance_arn.split(":", 5)
    return f"arn:{partition}:codedeploy:{region}:{account}:deploymentgroup:{app}/{name}"


def test_full_ecs_group_round_trips_every_field(cd):
    make_app(cd, platform="ECS")
    fields = {
        "deploymentConfigName": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
        "ecsServices": [{"serviceName": "api", "clusterName": "prod-cluster"}],
        "loadBalancerInfo": ecs_target_groups("api-blue", "api-green", test_route=True),
        "deploymentStyle": BLUE_GREEN_TRAFFIC,
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 30},
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
        },
        "triggerConfigurations": [
            {"triggerName": "ops", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentStart", "DeploymentReady"]}
        ],
        "alarmConfiguration": {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "api-5xx"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]},
    }
    group_id = create(cd, **fields)
    assert get(cd) == {
        **EMPTY,
        **fields,
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "serviceRoleArn": ROLE,
        "computePlatform": "ECS",
    }


def test_full_lambda_group_round_trips_every_field(cd):
    make_app(cd, platform="Lambda")
    fields = {
        "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        "deploymentStyle": BLUE_GREEN_TRAFFIC,
        "triggerConfigurations": [
            {"triggerName": "ops", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentSuccess"]}
        ],
        "alarmConfiguration": {"enabled": False, "ignorePollAlarmFailure": True, "alarms": [{"name": "errors"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    }
    group_id = create(cd, **fields)
    assert get(cd) == {
        **EMPTY,
        **fields,
        "applicationName": "app",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "group",
        "serviceRoleArn": ROLE,
        "computePlatform": "Lambda",
    }


def test_custom_deployment_config_is_kept(cd):
    make_app(cd)
    cd.create_deployment_config(deploymentConfigName="TwoAtATime", minimumHealthyHosts={"type": "HOST_COUNT", "value": 2})
    create(cd, deploymentConfigName="TwoAtATime")
    assert get(cd)["deploymentConfigName"] == "TwoAtATime"


def test_same_group_name_in_two_applications(cd):
    make_app(cd, "one")
    make_app(cd, "two")
    first = create(cd, "one", "prod")
    second = create(cd, "two", "prod")
    assert first != second
    assert get(cd, "one", "prod")["deploymentGroupId"] == first
    assert get(cd, "two", "prod")["deploymentGroupId"] == second


def test_cli_create_with_shorthand_and_get(server, cd):
    make_app(cd, "WordPress_App")
    make_pools(server, "CodeDeployDemo-ASG")
    created = cli_ok(
        server.aws(
            "deploy", "create-deployment-group",
            "--application-name", "WordPress_App",
            "--deployment-group-name", "WordPress_DG",
            "--service-role-arn", ROLE,
            "--deployment-config-name", "CodeDeployDefault.AllAtOnce",
            "--ec2-tag-filters", "Key=Name,Value=CodeDeployDemo,Type=KEY_AND_VALUE", "Key=Tier,Type=KEY_ONLY",
            "--auto-scaling-groups", "CodeDeployDemo-ASG",
            "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL",
            "--load-balancer-info", "targetGroupInfoList=[{name=wp-tg}]",
            "--alarm-configuration", "enabled=true,alarms=[{name=cpu-high},{name=disk-full}]",
            "--auto-rollback-configuration", "enabled=true,events=[DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM]",
            "--trigger-configurations",
            f"triggerName=ops,triggerTargetArn={TOPIC},triggerEvents=[DeploymentFailure,InstanceFailure]",
            "--outdated-instances-strategy", "IGNORE",
        )
    )
    group_id = created["deploymentGroupId"]
    info = cli_ok(
        server.aws("deploy", "get-deployment-group", "--application-name", "WordPress_App",
                   "--deployment-group-name", "WordPress_DG")
    )["deploymentGroupInfo"]
    assert pool_names(info["autoScalingGroups"], group="WordPress_DG") == ["CodeDeployDemo-ASG"]
    assert info == {
        **EMPTY,
        "autoScalingGroups": info["autoScalingGroups"],
        "applicationName": "WordPress_App",
        "deploymentGroupId": group_id,
        "deploymentGroupName": "WordPress_DG",
        "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
        "serviceRoleArn": ROLE,
        "computePlatform": "Server",
        "ec2TagFilters": [
            {"Key": "Name", "Value": "CodeDeployDemo", "Type": "KEY_AND_VALUE"},
            {"Key": "Tier", "Type": "KEY_ONLY"},
        ],
        "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "wp-tg"}]},
        "alarmConfiguration": {"enabled": True, "ignorePollAlarmFailure": False,
                               "alarms": [{"name": "cpu-high"}, {"name": "disk-full"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
        "triggerConfigurations": [
            {"triggerName": "ops", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentFailure", "InstanceFailure"]}
        ],
        "outdatedInstancesStrategy": "IGNORE",
    }
    # boto3 sees the very same group.
    assert get(cd, "WordPress_App", "WordPress_DG") == info


# -- Create: validation ---------------------------------------------------------------------------

def tag(key=None, value=None, kind=None):
    return {k: v for k, v in (("Key", key), ("Value", value), ("Type", kind)) if v is not None}


TRIGGER = {"triggerName": "t", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentStart"]}
ELB = {"elbInfoList": [{"name": "web"}]}

SERVER_REFUSALS = {
    "ec2 filters with an ec2 tag set": (
        {"ec2TagFilters": [tag("Name", "web", "KEY_AND_VALUE")],
         "ec2TagSet": {"ec2TagSetList": [[tag("Env", kind="KEY_ONLY")]]}},
        "InvalidEC2TagCombinationException",
    ),
    "on-premises filters with an on-premises tag set": (
        {"onPremisesInstanceTagFilters": [tag("Name", "web", "KEY_AND_VALUE")],
         "onPremisesTagSet": {"onPremisesTagSetList": [[tag("Env", kind="KEY_ONLY")]]}},
        "InvalidOnPremisesTagCombinationException",
    ),
    "four ec2 tag groups": (
        {"ec2TagSet": {"ec2TagSetList": [[tag(f"k{i}", kind="KEY_ONLY")] for i in range(4)]}},
        "TagSetListLimitExceededException",
    ),
    "four on-premises tag groups": (
        {"onPremisesTagSet": {"onPremisesTagSetList": [[tag(f"k{i}", kind="KEY_ONLY")] for i in range(4)]}},
        "TagSetListLimitExceededException",
    ),
    "ec2 KEY_ONLY filter without a key": ({"ec2TagFilters": [tag(value="web", kind="KEY_ONLY")]}, "InvalidEC2TagException"),
    "ec2 KEY_AND_VALUE filter without a value": (
        {"ec2TagFilters": [tag("Name", kind="KEY_AND_VALUE")]}, "InvalidEC2TagException"),
    "ec2 filter of an unknown type": ({"ec2TagFilters": [tag("Name", "web", "BOTH")]}, "InvalidEC2TagException"),
    "ec2 tag set with a bad filter": (
        {"ec2TagSet": {"ec2TagSetList": [[tag("Name", kind="VALUE_ONLY")]]}}, "InvalidEC2TagException"),
    "on-premises VALUE_ONLY filter without a value": (
        {"onPremisesInstanceTagFilters": [tag("Name", kind="VALUE_ONLY")]}, "InvalidTagException"),
    "on-premises tag set with a bad filter": (
        {"onPremisesTagSet": {"onPremisesTagSetList": [[tag(kind="KEY_ONLY")]]}}, "InvalidTagException"),
    "alarms enabled with none": ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
    "eleven alarms": (
        {"alarmConfiguration": {"enabled": True, "alarms": [{"name": f"a{i}"} for i in range(11)]}},
        "AlarmsLimitExceededException",
    ),
    "the same alarm twice": (
        {"alarmConfiguration": {"enabled": True, "alarms": [{"name": "cpu"}, {"name": "cpu"}]}},
        "InvalidAlarmConfigException",
    ),
    "a trigger with an unknown event": (
        {"triggerConfigurations": [{**TRIGGER, "triggerEvents": ["DeploymentBegin"]}]}, "InvalidTriggerConfigException"),
    "two triggers of the same name": (
        {"triggerConfigurations": [TRIGGER, {**TRIGGER, "triggerEvents": ["DeploymentFailure"]}]},
        "InvalidTriggerConfigException",
    ),
    "a trigger whose target is not a topic": (
        {"triggerConfigurations": [{**TRIGGER, "triggerTargetArn": "arn:aws:sqs:us-east-1:123456789012:queue"}]},
        "InvalidTriggerConfigException",
    ),
    "a trigger without events": ({"triggerConfigurations": [{**TRIGGER, "triggerEvents": []}]}, "InvalidTriggerConfigException"),
    "eleven triggers": (
        {"triggerConfigurations": [{**TRIGGER, "triggerName": f"t{i}"} for i in range(11)]},
        "TriggerTargetsLimitExceededException",
    ),
    "rollback enabled without events": (
        {"autoRollbackConfiguration": {"enabled": True, "events": []}}, "InvalidAutoRollbackConfigException"),
    "rollback on an unknown event": (
        {"autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_TIMEOUT"]}},
        "InvalidAutoRollbackConfigException",
    ),
    "an unknown deployment type": (
        {"deploymentStyle": {"deploymentType": "CANARY", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}},
        "InvalidDeploymentStyleException",
    ),
    "an unknown deployment option": (
        {"deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "SOMETIMES"}},
        "InvalidDeploymentStyleException",
    ),
    "blue/green without traffic control": (
        {"deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
         "loadBalancerInfo": ELB},
        "InvalidDeploymentStyleException",
    ),
    "in-place traffic control without a load balancer": (
        {"deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}},
        "InvalidLoadBalancerInfoException",
    ),
    "blue/green without a load balancer": ({"deploymentStyle": BLUE_GREEN_TRAFFIC}, "InvalidLoadBalancerInfoException"),
    "eleven classic load balancers": (
        {"loadBalancerInfo": {"elbInfoList": [{"name": f"e{i}"} for i in range(11)]}},
        "InvalidLoadBalancerInfoException",
    ),
    "an ECS target group pair on a Server group": ({"loadBalancerInfo": ecs_target_groups()}, "InvalidLoadBalancerInfoException"),
    "a termination wait over two days": (
        {"deploymentStyle": BLUE_GREEN_TRAFFIC, "loadBalancerInfo": ELB,
         "blueGreenDeploymentConfiguration": {
             "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 2881}}},
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "a negative ready wait": (
        {"deploymentStyle": BLUE_GREEN_TRAFFIC, "loadBalancerInfo": ELB,
         "blueGreenDeploymentConfiguration": {
             "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": -1}}},
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "an unknown action on timeout": (
        {"deploymentStyle": BLUE_GREEN_TRAFFIC, "loadBalancerInfo": ELB,
         "blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": "WAIT_FOREVER"}}},
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "copying an Auto Scaling group the group does not have": (
        {"deploymentStyle": BLUE_GREEN_TRAFFIC, "loadBalancerInfo": ELB,
         "blueGreenDeploymentConfiguration": {"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}}},
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "ECS services on a Server group": (
        {"ecsServices": [{"serviceName": "web", "clusterName": "prod"}]}, "InvalidECSServiceException"),
    "an unknown outdated instances strategy": ({"outdatedInstancesStrategy": "REPLACE"}, "InvalidInputException"),
    "an Auto Scaling group without a name": ({"autoScalingGroups": [""]}, "InvalidAutoScalingGroupException"),
    "a malformed role ARN": ({"serviceRoleArn": "CodeDeployServiceRole"}, "InvalidRoleException"),
    "a user ARN as the role": ({"serviceRoleArn": "arn:aws:iam::123456789012:user/deployer"}, "InvalidRoleException"),
    "an unknown deployment config": ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
    "a Lambda config": (
        {"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"}, "InvalidDeploymentConfigNameException"),
    "an ECS config": ({"deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce"}, "InvalidDeploymentConfigNameException"),
    "a tag without a key": ({"tags": [{"Key": "", "Value": "web"}]}, "InvalidTagsToAddException"),
}

LAMBDA_REFUSALS = {
    "in-place": (
        {"deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}},
        "InvalidDeploymentStyleException",
    ),
    "without traffic control": (
        {"deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}},
        "InvalidDeploymentStyleException",
    ),
    "a Server config": ({"deploymentConfigName": "CodeDeployDefault.OneAtATime"}, "InvalidDeploymentConfigNameException"),
    "an ECS config": ({"deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce"}, "InvalidDeploymentConfigNameException"),
    "ec2 tag filters": ({"ec2TagFilters": [tag("Name", "web", "KEY_AND_VALUE")]}, "InvalidEC2TagException"),
    "alarms enabled with none": ({"alarmConfiguration": {"enabled": True}}, "InvalidAlarmConfigException"),
    "on-premises tag filters": ({"onPremisesInstanceTagFilters": [tag("Name", "web", "KEY_AND_VALUE")]}, "InvalidTagException"),
    "Auto Scaling groups": ({"autoScalingGroups": ["asg"]}, "InvalidAutoScalingGroupException"),
    "a load balancer": ({"loadBalancerInfo": ELB}, "InvalidLoadBalancerInfoException"),
    "a blue/green configuration": (
        {"blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}}},
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "ECS services": ({"ecsServices": [{"serviceName": "web", "clusterName": "prod"}]}, "InvalidECSServiceException"),
}


def ecs_with(**changes):
    fields = copy.deepcopy(ecs_fields())
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def ecs_pair(**changes):
    pair = copy.deepcopy(ecs_target_groups()["targetGroupPairInfoList"][0])
    pair.update(changes)
    return {"targetGroupPairInfoList": [pair]}


ECS_REFUSALS = {
    "no service": (ecs_with(ecsServices=[]), "InvalidECSServiceException"),
    "two services": (
        ecs_with(ecsServices=[{"serviceName": "a", "clusterName": "c"}, {"serviceName": "b", "clusterName": "c"}]),
        "InvalidECSServiceException",
    ),
    "a service without its cluster": (ecs_with(ecsServices=[{"serviceName": "web"}]), "InvalidECSServiceException"),
    "one target group": (ecs_with(loadBalancerInfo=ecs_pair(targetGroups=[{"name": "blue"}])), "InvalidTargetGroupPairException"),
    "the same target group twice": (
        ecs_with(loadBalancerInfo=ecs_pair(targetGroups=[{"name": "blue"}, {"name": "blue"}])),
        "InvalidTargetGroupPairException",
    ),
    "two production listeners": (
        ecs_with(loadBalancerInfo=ecs_pair(prodTrafficRoute={"listenerArns": [LISTENER, TEST_LISTENER]})),
        "InvalidTargetGroupPairException",
    ),
    "no production route": (
        ecs_with(loadBalancerInfo={"targetGroupPairInfoList": [{"targetGroups": [{"name": "b"}, {"name": "g"}]}]}),
        "InvalidTargetGroupPairException",
    ),
    "two target group pairs": (
        ecs_with(loadBalancerInfo={"targetGroupPairInfoList": ecs_target_groups()["targetGroupPairInfoList"] * 2}),
        "InvalidTargetGroupPairException",
    ),
    "in-place": (
        ecs_with(deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}),
        "InvalidDeploymentStyleException",
    ),
    "a termination wait over two days": (
        ecs_with(blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 2881}}),
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "a Server config": (ecs_with(deploymentConfigName="CodeDeployDefault.AllAtOnce"), "InvalidDeploymentConfigNameException"),
    "no load balancer": (ecs_with(loadBalancerInfo=None), "InvalidLoadBalancerInfoException"),
    "a classic load balancer": (ecs_with(loadBalancerInfo={**ecs_target_groups(), **ELB}), "InvalidLoadBalancerInfoException"),
    "a green fleet option": (
        ecs_with(blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"}}),
        "InvalidBlueGreenDeploymentConfigurationException",
    ),
    "EC2 tag sets": (ecs_with(ec2TagSet={"ec2TagSetList": [[tag("Name", "web", "KEY_AND_VALUE")]]}), "InvalidEC2TagException"),
}


@pytest.mark.parametrize(
    "platform, table", [("Server", SERVER_REFUSALS), ("Lambda", LAMBDA_REFUSALS), ("ECS", ECS_REFUSALS)]
)
def test_create_refuses_invalid_settings(cd, platform, table):
    """Every case on one server (a server per case would be slow); every mismatch is reported."""
    make_app(cd, platform=platform)
    mismatches = []
    for index, (case, (fields, code)) in enumerate(table.items()):
        fields = {"serviceRoleArn": ROLE, **fields}
        try:
            cd.create_deployment_group(applicationName="app", deploymentGroupName=f"case-{index}", **fields)
            got = "accepted"
        except ClientError as error:
            got = error.response["Error"]["Code"]
        if got != code:
            mismatches.append(f"{case}: expected {code}, got {got}")
    assert not mismatches, "\n".join(mismatches)
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == []
    # A valid group is still accepted, so the refusals above were about their own settings.
    valid = ecs_fields() if platform == "ECS" else {}
    create(cd, **valid)
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["group"]


def test_create_without_a_role_is_refused(server, cd):
    make_app(cd)
    for body in ({"applicationName": "app", "deploymentGroupName": "group"},
                 {"applicationName": "app", "deploymentGroupName": "group", "serviceRoleArn": ""}):
        status, answer = server.raw(CREATE, body)
        assert (status, answer["__type"]) == (400, "RoleRequiredException"), answer
    assert_missing(cd)


def test_cli_reports_the_exception_of_a_refused_create(server, cd):
    make_app(cd)
    result = server.aws(
        "deploy", "create-deployment-group", "--application-name", "app", "--deployment-group-name", "group",
        "--service-role-arn", ROLE,
        "--ec2-tag-filters", "Key=Name,Value=web,Type=KEY_AND_VALUE",
        "--ec2-tag-set", json.dumps({"ec2TagSetList": [[{"Key": "Env", "Type": "KEY_ONLY"}]]}),
    )
    assert not result.ok
    assert "(InvalidEC2TagCombinationException)" in result.stderr
    assert_missing(cd)


def test_duplicate_group_name_is_refused_and_the_first_is_kept(cd):
    make_app(cd)
    group_id = create(cd, deploymentConfigName="CodeDeployDefault.AllAtOnce")
    before = get(cd)
    assert refused_code(cd.create_deployment_group, applicationName="app", deploymentGroupName="group",
                   serviceRoleArn=OTHER_ROLE) == "DeploymentGroupAlreadyExistsException"
    assert get(cd) == before
    assert before["deploymentGroupId"] == group_id
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["group"]


def test_invalid_group_names_are_refused(cd):
    make_app(cd)
    for name in ("bad name!", "x" * 101, "slash/name"):
        assert refused_code(cd.create_deployment_group, applicationName="app", deploymentGroupName=name,
                       serviceRoleArn=ROLE) == "InvalidDeploymentGroupNameException", name
        assert refused_code(cd.get_deployment_group, applicationName="app", deploymentGroupName=name) == (
            "InvalidDeploymentGroupNameException"
        ), name
    # Every character the documented pattern allows is accepted.
    create(cd, name="My.Group_1+=,@-")
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["My.Group_1+=,@-"]


def test_unknown_application_is_refused(cd):
    assert refused_code(cd.create_deployment_group, applicationName="nope", deploymentGroupName="group",
                   serviceRoleArn=ROLE) == "ApplicationDoesNotExistException"
    assert refused_code(cd.get_deployment_group, applicationName="nope", deploymentGroupName="group") == (
        "ApplicationDoesNotExistException"
    )
    assert refused_code(cd.list_deployment_groups, applicationName="nope") == "ApplicationDoesNotExistException"
    assert refused_code(cd.batch_get_deployment_groups, applicationName="nope", deploymentGroupNames=["group"]) == (
        "ApplicationDoesNotExistException"
    )


def test_ecs_service_belongs_to_one_group(cd):
    make_app(cd, "one", "ECS")
    make_app(cd, "two", "ECS")
    create(cd, "one", "first", **ecs_fields("web", "prod"))
    for app in ("one", "two"):
        assert refused_code(cd.create_deployment_group, applicationName=app, deploymentGroupName="second",
                       serviceRoleArn=ROLE, **ecs_fields("web", "prod")) == "ECSServiceMappingLimitExceededException"
        assert_missing(cd, app, "second")
    # The same service name in another cluster is another service.
    create(cd, "two", "second", **ecs_fields("web", "staging"))
    assert get(cd, "two", "second")["ecsServices"] == [{"serviceName": "web", "clusterName": "staging"}]


# -- BatchGet -------------------------------------------------------------------------------------


def test_batch_get_returns_found_groups_and_names_the_missing(cd):
    make_app(cd)
    create(cd, name="alpha")
    create(cd, name="bravo", deploymentConfigName="CodeDeployDefault.AllAtOnce")
    answer = cd.batch_get_deployment_groups(applicationName="app",
                                            deploymentGroupNames=["alpha", "ghost", "bravo", "phantom"])
    assert {info["deploymentGroupName"]: info for info in answer["deploymentGroupsInfo"]} == {
        "alpha": get(cd, name="alpha"),
        "bravo": get(cd, name="bravo"),
    }
    message = answer["errorMessage"]
    assert "ghost" in message and "phantom" in message
    assert "alpha" not in message and "bravo" not in message

    everything = cd.batch_get_deployment_groups(applicationName="app", deploymentGroupNames=["bravo", "alpha"])
    assert sorted(info["deploymentGroupName"] for info in everything["deploymentGroupsInfo"]) == ["alpha", "bravo"]
    assert everything["errorMessage"] == ""


def test_batch_get_through_the_cli(server, cd):
    make_app(cd, "my-codedeploy-application")
    for name in ("my-deployment-group-1", "my-deployment-group-2"):
        create(cd, "my-codedeploy-application", name,
               ec2TagSet={"ec2TagSetList": [[tag("Name", "my-EC2-instance", "KEY_AND_VALUE")]]})
    answer = cli_ok(server.aws(
        "deploy", "batch-get-deployment-groups", "--application-name", "my-codedeploy-application",
        "--deployment-group-names", '["my-deployment-group-1","my-deployment-group-2"]',
    ))
    assert answer["errorMessage"] == ""
    infos = sorted(answer["deploymentGroupsInfo"], key=lambda info: info["deploymentGroupName"])
    assert [info["deploymentGroupName"] for info in infos] == ["my-deployment-group-1", "my-deployment-group-2"]
    assert all(info["ec2TagSet"]["ec2TagSetList"] == [[tag("Name", "my-EC2-instance", "KEY_AND_VALUE")]]
               for info in infos)


def test_batch_get_over_100_names_is_refused(cd):
    make_app(cd)
    names = [f"g{i}" for i in range(101)]
    assert refused_code(cd.batch_get_deployment_groups, applicationName="app", deploymentGroupNames=names) == (
        "BatchLimitExceededException"
    )


# -- List -----------------------------------------------------------------------------------------


def test_list_pages_through_105_groups(server, cd):
    make_app(cd)
    make_app(cd, "other")
    create(cd, "other", "not-mine")
    names = {f"group-{i:03d}" for i in range(105)}
    for name in names:
        create(cd, name=name)

    first = cd.list_deployment_groups(applicationName="app")
    assert first["applicationName"] == "app"
    assert 0 < len(first["deploymentGroups"]) < 105 and first.get("nextToken")

    listed = []
    for page in cd.get_paginator("list_deployment_groups").paginate(applicationName="app"):
        listed += page["deploymentGroups"]
    assert len(listed) == 105 and set(listed) == names

    cli = cli_ok(server.aws("deploy", "list-deployment-groups", "--application-name", "app"))
    assert len(cli["deploymentGroups"]) == 105 and set(cli["deploymentGroups"]) == names

    assert refused_code(cd.list_deployment_groups, applicationName="app", nextToken="bogus-token") == (
        "InvalidNextTokenException"
    )
    # A token is bound to its listing.
    apps_token = first["nextToken"]
    assert refused_code(cd.list_applications, nextToken=apps_token) == "InvalidNextTokenException"


def test_list_of_an_application_without_groups_is_empty(cd):
    make_app(cd)
    answer = cd.list_deployment_groups(applicationName="app")
    assert answer["deploymentGroups"] == [] and "nextToken" not in answer


# -- Update ---------------------------------------------------------------------------------------


def update(cd, app="app", current="group", **fields):
    return cd.update_deployment_group(applicationName=app, currentDeploymentGroupName=current, **fields)


def test_partial_update_leaves_omitted_fields_unchanged(server, cd):
    make_app(cd)
    make_pools(server, "web-asg-a", "web-asg-b")
    create(cd, tags=[{"Key": "team", "Value": "web"}], **FULL_SERVER)
    before = get(cd)
    answer = update(cd, deploymentConfigName="CodeDeployDefault.AllAtOnce")
    assert answer["hooksNotCleanedUp"] == []
    assert get(cd) == {**before, "deploymentConfigName": "CodeDeployDefault.AllAtOnce"}
    update(cd)  # nothing given: nothing changes
    assert get(cd) == {**before, "deploymentConfigName": "CodeDeployDefault.AllAtOnce"}


def test_supplied_lists_replace_the_stored_ones(server, cd):
    make_app(cd)
    make_pools(server, "asg-a", "asg-b", "asg-c")
    create(cd,
           ec2TagFilters=[tag("Name", "web", "KEY_AND_VALUE"), tag("Env", kind="KEY_ONLY")],
           autoScalingGroups=["asg-a", "asg-b"],
           triggerConfigurations=[TRIGGER, {**TRIGGER, "triggerName": "u"}],
           alarmConfiguration={"enabled": True, "alarms": [{"name": "a"}, {"name": "b"}]},
           autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]})
    new_trigger = {"triggerName": "v", "triggerTargetArn": TOPIC, "triggerEvents": ["InstanceSuccess"]}
    update(cd,
           ec2TagFilters=[tag(value="api", kind="VALUE_ONLY")],
           autoScalingGroups=["asg-c"],
           triggerConfigurations=[new_trigger],
           alarmConfiguration={"enabled": True, "alarms": [{"name": "c"}]},
           autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]})
    info = get(cd)
    assert info["ec2TagFilters"] == [tag(value="api", kind="VALUE_ONLY")]
    assert pool_names(info["autoScalingGroups"]) == ["asg-c"]
    assert info["triggerConfigurations"] == [new_trigger]
    assert info["alarmConfiguration"] == {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "c"}]}
    assert info["autoRollbackConfiguration"] == {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]}

    update(cd, triggerConfigurations=[], alarmConfiguration={"enabled": False, "alarms": []},
           autoRollbackConfiguration={"enabled": False})
    info = get(cd)
    assert info["triggerConfigurations"] == []
    assert info["alarmConfiguration"] == EMPTY["alarmConfiguration"]
    assert info["autoRollbackConfiguration"] == {"enabled": False}
    assert info["ec2TagFilters"] == [tag(value="api", kind="VALUE_ONLY")]


def test_rename_keeps_the_group_id(cd):
    make_app(cd)
    group_id = create(cd, name="old", tags=[{"Key": "team", "Value": "web"}])
    update(cd, current="old", newDeploymentGroupName="new", deploymentConfigName="CodeDeployDefault.HalfAtATime")
    info = get(cd, name="new")
    assert info["deploymentGroupId"] == group_id
    assert info["deploymentGroupName"] == "new"
    assert info["deploymentConfigName"] == "CodeDeployDefault.HalfAtATime"
    assert_missing(cd, name="old")
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["new"]
    # The group's tags follow it to its new name.
    assert cd.list_tags_for_resource(ResourceArn=group_arn(cd, "app", "new"))["Tags"] == [{"Key": "team", "Value": "web"}]


def test_rename_onto_an_existing_name_changes_nothing(cd):
    make_app(cd)
    create(cd, name="blue")
    create(cd, name="green", deploymentConfigName="CodeDeployDefault.AllAtOnce")
    blue, green = get(cd, name="blue"), get(cd, name="green")
    assert refused_code(update, cd=cd, current="blue", newDeploymentGroupName="green",
                   serviceRoleArn=OTHER_ROLE) == "DeploymentGroupAlreadyExistsException"
    assert get(cd, name="blue") == blue
    assert get(cd, name="green") == green


def test_rename_to_its_own_name_is_fine(cd):
    make_app(cd)
    group_id = create(cd)
    update(cd, newDeploymentGroupName="group", serviceRoleArn=OTHER_ROLE)
    assert get(cd)["deploymentGroupId"] == group_id
    assert get(cd)["serviceRoleArn"] == OTHER_ROLE


def test_empty_auto_scaling_group_list_detaches_them(server, cd):
    make_app(cd)
    make_pools(server, "asg-a", "asg-b")
    create(cd, autoScalingGroups=["asg-a", "asg-b"], terminationHookEnabled=True)
    result = cli_ok(server.aws("deploy", "update-deployment-group", "--application-name", "app",
                               "--current-deployment-group-name", "group", "--auto-scaling-groups", "[]"))
    assert result == {"hooksNotCleanedUp": []}
    info = get(cd)
    assert info["autoScalingGroups"] == []
    assert info["terminationHookEnabled"] is True


def test_auto_scaling_groups_name_host_pools_whose_hooks_stay_while_named(server, cd):
    make_app(cd)
    make_pools(server, "pool-a", "pool-b")
    # A name that is no host pool, or a pool named twice, is refused and creates nothing.
    code, message = refusal(create, cd=cd, autoScalingGroups=["pool-a", "CodeDeployDemo-ASG"])
    assert code == "InvalidAutoScalingGroupException"
    assert "'CodeDeployDemo-ASG'" in message and "landfall pool create" in message
    assert refused_code(create, cd=cd, autoScalingGroups=["pool-a", "pool-a"]) == "InvalidAutoScalingGroupException"
    assert_missing(cd)

    create(cd, autoScalingGroups=["pool-a"])
    [a] = get(cd)["autoScalingGroups"]
    assert pool_names([a]) == ["pool-a"]
    # Naming another pool keeps the first one's hook; the new one gets its own.
    update(cd, autoScalingGroups=["pool-b", "pool-a"])
    b, a_again = get(cd)["autoScalingGroups"]
    assert a_again == a and b["name"] == "pool-b" and b["hook"] != a["hook"]
    pool_names([b])
    # The termination hooks come and go with terminationHookEnabled; the launch hooks stay.
    update(cd, terminationHookEnabled=True)
    asgs = get(cd)["autoScalingGroups"]
    assert pool_names(asgs, termination=True) == ["pool-b", "pool-a"]
    assert [asg["hook"] for asg in asgs] == [b["hook"], a["hook"]]
    # A rename keeps the hooks it named (CodeDeploy does not rename installed hooks).
    update(cd, newDeploymentGroupName="renamed")
    assert get(cd, name="renamed")["autoScalingGroups"] == asgs
    update(cd, current="renamed", terminationHookEnabled=False)
    assert get(cd, name="renamed")["autoScalingGroups"] == [b, a]
    # An update naming a pool that is gone changes nothing.
    before = get(cd, name="renamed")
    assert refused_code(update, cd=cd, current="renamed", autoScalingGroups=["pool-c"]) == (
        "InvalidAutoScalingGroupException")
    assert get(cd, name="renamed") == before
    # Dropped and named again: a new hook.
    update(cd, current="renamed", autoScalingGroups=[])
    update(cd, current="renamed", autoScalingGroups=["pool-a"])
    [a_new] = get(cd, name="renamed")["autoScalingGroups"]
    assert pool_names([a_new], group="renamed") == ["pool-a"] and a_new["hook"] != a["hook"]


def test_update_switches_between_tag_filters_and_tag_sets(cd):
    make_app(cd)
    create(cd,
           ec2TagFilters=[tag("Name", "web", "KEY_AND_VALUE")],
           onPremisesTagSet={"onPremisesTagSetList": [[tag("Env", "prod", "KEY_AND_VALUE")]]})
    tag_set = {"ec2TagSetList": [[tag("Name", "web", "KEY_AND_VALUE")], [tag("Tier", kind="KEY_ONLY")]]}
    update(cd, ec2TagSet=tag_set, onPremisesInstanceTagFilters=[tag("Env", "prod", "KEY_AND_VALUE")])
    info = get(cd)
    assert info["ec2TagSet"] == tag_set and info["ec2TagFilters"] == []
    assert info["onPremisesInstanceTagFilters"] == [tag("Env", "prod", "KEY_AND_VALUE")]
    assert info["onPremisesTagSet"] == {"onPremisesTagSetList": []}

    # ...and back, one kind at a time: the other kind is left alone.
    update(cd, ec2TagFilters=[tag("Role", kind="KEY_ONLY")])
    info = get(cd)
    assert info["ec2TagFilters"] == [tag("Role", kind="KEY_ONLY")]
    assert info["ec2TagSet"] == {"ec2TagSetList": []}
    assert info["onPremisesInstanceTagFilters"] == [tag("Env", "prod", "KEY_AND_VALUE")]

    # Both forms of one kind in a single call are still refused.
    before = get(cd)
    assert refused_code(update, cd=cd, ec2TagFilters=[tag("a", kind="KEY_ONLY")], ec2TagSet=tag_set) == (
        "InvalidEC2TagCombinationException"
    )
    assert get(cd) == before

    # An empty tag set clears the kind's selection and shows as AWS shows an unset one.
    update(cd, ec2TagSet={}, onPremisesTagSet={"onPremisesTagSetList": []})
    info = get(cd)
    assert info["ec2TagFilters"] == [] and info["ec2TagSet"] == {"ec2TagSetList": []}
    assert info["onPremisesInstanceTagFilters"] == [] and info["onPremisesTagSet"] == {"onPremisesTagSetList": []}


def test_update_validates_the_merged_group(server, cd):
    make_app(cd)
    make_pools(server, "asg")
    create(cd, loadBalancerInfo=ELB, autoScalingGroups=["asg"],
           deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    before = get(cd)
    refusals = [
        # the stored style routes traffic, so the load balancer cannot go
        ({"loadBalancerInfo": {}}, "InvalidLoadBalancerInfoException"),
        # copying needs the stored Auto Scaling groups, which this removes
        ({"autoScalingGroups": [], "deploymentStyle": BLUE_GREEN_TRAFFIC,
          "blueGreenDeploymentConfiguration": {"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}}},
         "InvalidBlueGreenDeploymentConfigurationException"),
        ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
        ({"triggerConfigurations": [TRIGGER, TRIGGER]}, "InvalidTriggerConfigException"),
        ({"serviceRoleArn": "not-a-role"}, "InvalidRoleException"),
        ({"serviceRoleArn": ""}, "InvalidRoleException"),
        ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
        ({"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"}, "InvalidDeploymentConfigNameException"),
        ({"newDeploymentGroupName": "renamed", "ec2TagSet": {"ec2TagSetList": [[tag("k", kind="KEY_ONLY")]] * 4}},
         "TagSetListLimitExceededException"),
        ({"newDeploymentGroupName": "bad name!"}, "InvalidDeploymentGroupNameException"),
    ]
    for fields, code in refusals:
        assert refused_code(update, cd=cd, **fields) == code, fields
        assert get(cd) == before, fields
    assert_missing(cd, name="renamed")

    # Without the load balancer's traffic control, the load balancer can go.
    update(cd, deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
           loadBalancerInfo={})
    assert get(cd)["deploymentStyle"]["deploymentOption"] == "WITHOUT_TRAFFIC_CONTROL"


def test_update_of_an_unknown_group_or_application(cd):
    make_app(cd)
    assert refused_code(update, cd=cd, current="ghost", serviceRoleArn=ROLE) == "DeploymentGroupDoesNotExistException"
    assert refused_code(update, cd=cd, current="ghost", newDeploymentGroupName="x") == "DeploymentGroupDoesNotExistException"
    assert_missing(cd, name="x")
    assert refused_code(update, cd=cd, app="nope", current="group") == "ApplicationDoesNotExistException"


def test_update_of_an_ecs_group(cd):
    make_app(cd, platform="ECS")
    create(cd, name="api", **ecs_fields("api", "prod"))
    create(cd, name="web", **ecs_fields("web", "prod"))
    # Updating without the service keeps it, and keeping its own service is no clash.
    update(cd, current="web", deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes")
    update(cd, current="web", ecsServices=[{"serviceName": "web", "clusterName": "prod"}])
    web = get(cd, name="web")
    assert web["ecsServices"] == [{"serviceName": "web", "clusterName": "prod"}]
    assert web["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    # Taking another group's service is refused.
    assert refused_code(update, cd=cd, current="web", ecsServices=[{"serviceName": "api", "clusterName": "prod"}]) == (
        "ECSServiceMappingLimitExceededException"
    )
    assert get(cd, name="web") == web
    # Moving to a free service frees the old one.
    update(cd, current="web", ecsServices=[{"serviceName": "web-v2", "clusterName": "prod"}],
           loadBalancerInfo=ecs_target_groups("v2-blue", "v2-green", test_route=True))
    web = get(cd, name="web")
    assert web["ecsServices"] == [{"serviceName": "web-v2", "clusterName": "prod"}]
    assert web["loadBalancerInfo"] == ecs_target_groups("v2-blue", "v2-green", test_route=True)
    create(cd, name="web-again", **ecs_fields("web", "prod"))
    assert refused_code(update, cd=cd, current="web", ecsServices=[]) == "InvalidECSServiceException"


def test_cli_update_renames_and_changes_settings(server, cd):
    make_app(cd, "WordPress_App")
    make_pools(server, "CodeDeployDemo-ASG", "My_CodeDeployDemo_ASG")
    group_id = create(cd, "WordPress_App", "WordPress_DG", autoScalingGroups=["CodeDeployDemo-ASG"],
                      ec2TagFilters=[tag("Name", "CodeDeployDemo", "KEY_AND_VALUE")])
    answer = cli_ok(server.aws(
        "deploy", "update-deployment-group",
        "--application-name", "WordPress_App",
        "--current-deployment-group-name", "WordPress_DG",
        "--new-deployment-group-name", "My_WordPress_DepGroup",
        "--auto-scaling-groups", "My_CodeDeployDemo_ASG",
        "--deployment-config-name", "CodeDeployDefault.AllAtOnce",
        "--ec2-tag-filters", "Key=Name,Type=KEY_AND_VALUE,Value=My_CodeDeployDemo",
        "--service-role-arn", OTHER_ROLE,
    ))
    assert answer == {"hooksNotCleanedUp": []}
    info = get(cd, "WordPress_App", "My_WordPress_DepGroup")
    assert info["deploymentGroupId"] == group_id
    assert pool_names(info["autoScalingGroups"], group="My_WordPress_DepGroup") == ["My_CodeDeployDemo_ASG"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert info["ec2TagFilters"] == [tag("Name", "My_CodeDeployDemo", "KEY_AND_VALUE")]
    assert info["serviceRoleArn"] == OTHER_ROLE
    assert_missing(cd, "WordPress_App", "WordPress_DG")

    assert refused_code(update, cd=cd, app="WordPress_App", current="WordPress_DG") == "DeploymentGroupDoesNotExistException"


# -- Delete ---------------------------------------------------------------------------------------


def test_delete_then_reuse_the_name(server, cd):
    make_app(cd)
    old_id = create(cd, deploymentConfigName="CodeDeployDefault.AllAtOnce")
    answer = cli_ok(server.aws("deploy", "delete-deployment-group", "--application-name", "app",
                               "--deployment-group-name", "group"))
    assert answer == {"hooksNotCleanedUp": []}
    assert_missing(cd)
    # Deleting it again is fine.
    assert cd.delete_deployment_group(applicationName="app", deploymentGroupName="group")["hooksNotCleanedUp"] == []
    assert_missing(cd)

    new_id = create(cd)
    assert new_id != old_id
    info = get(cd)
    assert info["deploymentGroupId"] == new_id
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"  # nothing carried over


def test_delete_with_boto3_and_of_unknown_names(cd):
    make_app(cd)
    create(cd, name="keep")
    create(cd, name="drop")
    assert cd.delete_deployment_group(applicationName="app", deploymentGroupName="drop")["hooksNotCleanedUp"] == []
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["keep"]
    assert cd.delete_deployment_group(applicationName="app", deploymentGroupName="ghost")["hooksNotCleanedUp"] == []
    assert cd.delete_deployment_group(applicationName="nope", deploymentGroupName="keep")["hooksNotCleanedUp"] == []
    assert get(cd, name="keep")["deploymentGroupName"] == "keep"


def test_delete_frees_the_ecs_service(cd):
    make_app(cd, "one", "ECS")
    make_app(cd, "two", "ECS")
    create(cd, "one", "first", **ecs_fields())
    cd.delete_deployment_group(applicationName="one", deploymentGroupName="first")
    create(cd, "two", "second", **ecs_fields())
    assert get(cd, "two", "second")["ecsServices"] == ecs_fields()["ecsServices"]
    # Deleting the application deletes its groups, which frees their services too.
    cd.delete_application(applicationName="two")
    make_app(cd, "two", "ECS")
    assert_missing(cd, "two", "second")
    create(cd, "one", "third", **ecs_fields())
