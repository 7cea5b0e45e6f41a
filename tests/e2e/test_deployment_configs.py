"""Deployment configurations: the 17 predefined `CodeDeployDefault.*` ones and custom ones
(CreateDeploymentConfig, GetDeploymentConfig, ListDeploymentConfigs, DeleteDeploymentConfig),
through boto3 and the aws CLI."""

import datetime
import json
import re

import pytest

from conftest import cli_refused, refused, utcnow

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"


def canary(percentage, interval):
    return {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": percentage, "canaryInterval": interval}}


def linear(percentage, interval):
    return {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": percentage, "linearInterval": interval}}


ALL_AT_ONCE = {"type": "AllAtOnce"}

# Reference section 3: name -> (platform, minimumHealthyHosts or trafficRoutingConfig).
PREDEFINED = {
    "CodeDeployDefault.OneAtATime": ("Server", {"type": "MOST_CONCURRENCY", "value": 1}),
    "CodeDeployDefault.HalfAtATime": ("Server", {"type": "FLEET_PERCENT", "value": 50}),
    "CodeDeployDefault.AllAtOnce": ("Server", {"value": 0}),
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": ("Lambda", canary(10, 5)),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": ("Lambda", canary(10, 10)),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": ("Lambda", canary(10, 15)),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": ("Lambda", canary(10, 30)),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": ("Lambda", linear(10, 1)),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": ("Lambda", linear(10, 2)),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": ("Lambda", linear(10, 3)),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": ("Lambda", linear(10, 10)),
    "CodeDeployDefault.LambdaAllAtOnce": ("Lambda", ALL_AT_ONCE),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("ECS", linear(10, 1)),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("ECS", linear(10, 3)),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("ECS", canary(10, 5)),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("ECS", canary(10, 15)),
    "CodeDeployDefault.ECSAllAtOnce": ("ECS", ALL_AT_ONCE),
}


def config_names(cd):
    pages = cd.get_paginator("list_deployment_configs").paginate()
    return [name for page in pages for name in page["deploymentConfigsList"]]


def custom_names(cd):
    return sorted(name for name in config_names(cd) if not name.startswith("CodeDeployDefault."))


def absent(cd, name):
    refused("DeploymentConfigDoesNotExistException", cd.get_deployment_config, deploymentConfigName=name)


def routing_of(info):
    """The trafficRoutingConfig of an answer without the parts that do not apply to its type."""
    routing = info["trafficRoutingConfig"]
    return {k: v for k, v in routing.items() if v}


# -- predefined configurations ---------------------------------------------------------------------


def test_all_17_predefined_configs_are_listed(server, cd):
    listed = config_names(cd)
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(PREDEFINED)
    result = server.aws("deploy", "list-deployment-configs")
    assert result.ok, result.stderr
    assert sorted(result.json["deploymentConfigsList"]) == sorted(PREDEFINED)
    result = server.aws("deploy", "get-deployment-config", "--deployment-config-name",
                        "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    assert result.ok, result.stderr
    info = result.json["deploymentConfigInfo"]
    assert info["computePlatform"] == "Lambda"
    assert info["trafficRoutingConfig"]["type"] == "TimeBasedCanary"
    assert info["trafficRoutingConfig"]["timeBasedCanary"] == {"canaryPercentage": 10, "canaryInterval": 30}


def test_predefined_configs_have_their_documented_values(cd):
    ids = set()
    for name, (platform, rule) in PREDEFINED.items():
        info = cd.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
        assert info["deploymentConfigName"] == name
        assert info["computePlatform"] == platform, name
        assert re.fullmatch(r"00000000-0000-0000-0000-0000000000\d\d", info["deploymentConfigId"]), info
        ids.add(info["deploymentConfigId"])
        assert "zonalConfig" not in info, name
        assert isinstance(info["createTime"], datetime.datetime)
        if platform == "Server":
            hosts = info["minimumHealthyHosts"]
            assert hosts["value"] == rule["value"], name
            if "type" in rule:
                assert hosts["type"] == rule["type"], name
            else:  # AWS does not document AllAtOnce's type; either type means zero here.
                assert hosts["type"] in ("HOST_COUNT", "FLEET_PERCENT"), name
            assert "trafficRoutingConfig" not in info, name
        else:
            assert routing_of(info) == rule, name
            assert "minimumHealthyHosts" not in info, name
    assert len(ids) == 17
    one = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.OneAtATime")["deploymentConfigInfo"]
    assert one["deploymentConfigId"] == "00000000-0000-0000-0000-000000000001"
    ecs = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
    assert ecs["deploymentConfigInfo"]["deploymentConfigId"] == "00000000-0000-0000-0000-000000000015"


# -- CreateDeploymentConfig: Server ----------------------------------------------------------------


def test_create_server_config_with_the_cli(server, cd):
    before = utcnow()
    created = server.aws("deploy", "create-deployment-config", "--deployment-config-name", "TwoHealthy",
                         "--minimum-healthy-hosts", "type=HOST_COUNT,value=2")
    assert created.ok, created.stderr
    config_id = created.json["deploymentConfigId"]
    assert UUID.match(config_id) and not config_id.startswith("00000000-")

    got = server.aws("deploy", "get-deployment-config", "--deployment-config-name", "TwoHealthy")
    assert got.ok, got.stderr
    info = got.json["deploymentConfigInfo"]
    assert info["deploymentConfigId"] == config_id
    assert info["deploymentConfigName"] == "TwoHealthy"
    assert info["computePlatform"] == "Server"
    assert info["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 2}
    assert "trafficRoutingConfig" not in info and "zonalConfig" not in info
    created_at = datetime.datetime.fromtimestamp(info["createTime"], datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=5) <= created_at <= utcnow() + datetime.timedelta(seconds=5)
    assert custom_names(cd) == ["TwoHealthy"]
    assert len(config_names(cd)) == 18


def test_create_server_config_fleet_percent_limits(cd):
    for value in (0, 75, 99):
        cd.create_deployment_config(deploymentConfigName=f"Fleet{value}",
                                    minimumHealthyHosts={"type": "FLEET_PERCENT", "value": value})
        info = cd.get_deployment_config(deploymentConfigName=f"Fleet{value}")["deploymentConfigInfo"]
        assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": value}
        assert info["computePlatform"] == "Server"
    cd.create_deployment_config(deploymentConfigName="NoneHealthy", computePlatform="Server",
                                minimumHealthyHosts={"type": "HOST_COUNT", "value": 0})
    cd.create_deployment_config(deploymentConfigName="ManyHealthy",
                                minimumHealthyHosts={"type": "HOST_COUNT", "value": 500})
    assert custom_names(cd) == ["Fleet0", "Fleet75", "Fleet99", "ManyHealthy", "NoneHealthy"]


def test_out_of_range_minimum_healthy_hosts_are_refused_and_create_nothing(cd):
    for hosts in [
        {"type": "FLEET_PERCENT", "value": 100},
        {"type": "FLEET_PERCENT", "value": -1},
        {"type": "HOST_COUNT", "value": -1},
        {"type": "MOST_CONCURRENCY", "value": 1},
        {"type": "HALF", "value": 1},
        {"type": "HOST_COUNT"},
        {"value": 3},
    ]:
        refused("InvalidMinimumHealthyHostValueException", cd.create_deployment_config,
                deploymentConfigName="Bad", minimumHealthyHosts=hosts)
    refused("InvalidMinimumHealthyHostValueException", cd.create_deployment_config, deploymentConfigName="Bad")
    absent(cd, "Bad")
    assert custom_names(cd) == []


def test_server_config_with_traffic_routing_is_landfalls_weighted_blue_green(cd):
    """CodeDeploy refuses trafficRoutingConfig on a Server configuration; Landfall uses it to
    shift a blue/green deployment's traffic by weights. It is checked as for Lambda and ECS."""
    cd.create_deployment_config(deploymentConfigName="Canary", minimumHealthyHosts={"type": "HOST_COUNT", "value": 0},
                                trafficRoutingConfig=canary(10, 5))
    info = cd.get_deployment_config(deploymentConfigName="Canary")["deploymentConfigInfo"]
    assert info["computePlatform"] == "Server"
    assert info["trafficRoutingConfig"]["timeBasedCanary"] == {"canaryPercentage": 10, "canaryInterval": 5}
    refused("InvalidTrafficRoutingConfigurationException", cd.create_deployment_config,
            deploymentConfigName="Mixed", computePlatform="Server", trafficRoutingConfig={"type": "TimeBasedCanary"},
            minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 10})
    absent(cd, "Mixed")
    assert custom_names(cd) == ["Canary"]


def test_create_server_config_with_a_zonal_config(server, cd):
    zonal = {"firstZoneMonitorDurationInSeconds": 600, "monitorDurationInSeconds": 300,
             "minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 50}}
    created = server.aws("deploy", "create-deployment-config", "--deployment-config-name", "Zonal",
                         "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=75",
                         "--zonal-config", json.dumps(zonal))
    assert created.ok, created.stderr
    info = cd.get_deployment_config(deploymentConfigName="Zonal")["deploymentConfigInfo"]
    assert info["zonalConfig"] == zonal
    assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}

    cd.create_deployment_config(deploymentConfigName="ZonalCount",
                                minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
                                zonalConfig={"minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 2}})
    info = cd.get_deployment_config(deploymentConfigName="ZonalCount")["deploymentConfigInfo"]
    assert info["zonalConfig"]["minimumHealthyHostsPerZone"] == {"type": "HOST_COUNT", "value": 2}


def test_invalid_zonal_configs_are_refused_and_create_nothing(cd):
    hosts = {"type": "HOST_COUNT", "value": 1}
    for zonal in [
        {"minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 100}},
        {"minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": -1}},
        {"minimumHealthyHostsPerZone": {"type": "MOST_CONCURRENCY", "value": 1}},
        {"firstZoneMonitorDurationInSeconds": -1},
        {"monitorDurationInSeconds": -5},
    ]:
        refused("InvalidZonalDeploymentConfigurationException", cd.create_deployment_config,
                deploymentConfigName="BadZonal", minimumHealthyHosts=hosts, zonalConfig=zonal)
    refused("InvalidZonalDeploymentConfigurationException", cd.create_deployment_config,
            deploymentConfigName="BadZonal", computePlatform="Lambda", trafficRoutingConfig=ALL_AT_ONCE,
            zonalConfig={"monitorDurationInSeconds": 60})
    absent(cd, "BadZonal")
    assert custom_names(cd) == []


# -- CreateDeploymentConfig: Lambda and ECS --------------------------------------------------------


@pytest.mark.parametrize("platform", ["Lambda", "ECS"])
def test_create_traffic_routing_configs(cd, platform):
    for name, routing in [("Canary", canary(25, 15)), ("Linear", linear(20, 4)), ("AllAtOnce", ALL_AT_ONCE),
                          ("CanaryEdges", canary(99, 2880)), ("LinearEdges", linear(1, 1))]:
        full = f"{platform}{name}"
        config_id = cd.create_deployment_config(deploymentConfigName=full, computePlatform=platform,
                                                trafficRoutingConfig=routing)["deploymentConfigId"]
        info = cd.get_deployment_config(deploymentConfigName=full)["deploymentConfigInfo"]
        assert info["deploymentConfigId"] == config_id
        assert info["computePlatform"] == platform
        assert routing_of(info) == routing
        assert "minimumHealthyHosts" not in info
    assert len(custom_names(cd)) == 5


def test_create_lambda_config_with_the_cli(server, cd):
    created = server.aws("deploy", "create-deployment-config", "--deployment-config-name", "LambdaLinear",
                         "--compute-platform", "Lambda", "--traffic-routing-config",
                         "type=TimeBasedLinear,timeBasedLinear={linearPercentage=10,linearInterval=2}")
    assert created.ok, created.stderr
    info = cd.get_deployment_config(deploymentConfigName="LambdaLinear")["deploymentConfigInfo"]
    assert routing_of(info) == linear(10, 2)


def test_invalid_traffic_routing_is_refused_and_creates_nothing(server, cd):
    for routing in [
        canary(0, 5), canary(100, 5), canary(10, 0), canary(10, 2881),
        linear(0, 1), linear(100, 1), linear(10, 0),
        linear(10, 321),  # 9 more steps of 321 minutes: more than 2880 minutes from first to last shift
        {"type": "TimeBasedCanary"},
        {"type": "TimeBasedLinear", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5}},
        {"type": "AllAtOnce", "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1}},
        {"type": "Gradual"},
        {},
    ]:
        refused("InvalidTrafficRoutingConfigurationException", cd.create_deployment_config,
                deploymentConfigName="BadRouting", computePlatform="ECS", trafficRoutingConfig=routing)
    refused("InvalidTrafficRoutingConfigurationException", cd.create_deployment_config,
            deploymentConfigName="BadRouting", computePlatform="Lambda")
    cli_refused(server.aws("deploy", "create-deployment-config", "--deployment-config-name", "BadRouting",
                           "--compute-platform", "Lambda", "--traffic-routing-config",
                           "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=100,canaryInterval=5}"),
                "InvalidTrafficRoutingConfigurationException")
    absent(cd, "BadRouting")
    assert custom_names(cd) == []


def test_longest_linear_shift_is_accepted(cd):
    cd.create_deployment_config(deploymentConfigName="Slow", computePlatform="Lambda",
                                trafficRoutingConfig=linear(10, 320))
    assert routing_of(cd.get_deployment_config(deploymentConfigName="Slow")["deploymentConfigInfo"]) == linear(10, 320)


# -- CreateDeploymentConfig: names and platform ----------------------------------------------------


def test_reserved_prefix_is_refused(server, cd):
    message = refused("InvalidDeploymentConfigNameException", cd.create_deployment_config,
                      deploymentConfigName="CodeDeployDefault.Mine",
                      minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    assert "CodeDeployDefault." in message
    cli_refused(server.aws("deploy", "create-deployment-config", "--deployment-config-name",
                           "CodeDeployDefault.OneAtATime", "--minimum-healthy-hosts", "type=HOST_COUNT,value=3"),
                "InvalidDeploymentConfigNameException")
    absent(cd, "CodeDeployDefault.Mine")
    one = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.OneAtATime")["deploymentConfigInfo"]
    assert one["minimumHealthyHosts"] == {"type": "MOST_CONCURRENCY", "value": 1}
    assert custom_names(cd) == []


def test_duplicate_name_is_refused_and_keeps_the_first(server, cd):
    first = cd.create_deployment_config(deploymentConfigName="Dup",
                                        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})["deploymentConfigId"]
    refused("DeploymentConfigAlreadyExistsException", cd.create_deployment_config, deploymentConfigName="Dup",
            computePlatform="Lambda", trafficRoutingConfig=ALL_AT_ONCE)
    cli_refused(server.aws("deploy", "create-deployment-config", "--deployment-config-name", "Dup",
                           "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=10"),
                "DeploymentConfigAlreadyExistsException")
    info = cd.get_deployment_config(deploymentConfigName="Dup")["deploymentConfigInfo"]
    assert info["deploymentConfigId"] == first
    assert info["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 1}
    assert info["computePlatform"] == "Server"
    assert custom_names(cd) == ["Dup"]


def test_invalid_compute_platform_is_refused(cd):
    refused("InvalidComputePlatformException", cd.create_deployment_config, deploymentConfigName="Odd",
            computePlatform="Mainframe", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    absent(cd, "Odd")


def test_illegal_and_missing_names_are_refused(server, cd):
    hosts = {"type": "HOST_COUNT", "value": 1}
    for name in ["has space", "slash/name", "x" * 101, "\u00fcber"]:
        refused("InvalidDeploymentConfigNameException", cd.create_deployment_config, deploymentConfigName=name,
                minimumHealthyHosts=hosts)
    for body in [{"minimumHealthyHosts": hosts}, {"deploymentConfigName": "", "minimumHealthyHosts": hosts}]:
        status, answer = server.raw("CodeDeploy_20141006.CreateDeploymentConfig", body)
        assert answer["__type"] == "DeploymentConfigNameRequiredException", answer
    status, answer = server.raw("CodeDeploy_20141006.GetDeploymentConfig", {})
    assert answer["__type"] == "DeploymentConfigNameRequiredException", answer
    status, answer = server.raw("CodeDeploy_20141006.DeleteDeploymentConfig", {})
    assert answer["__type"] == "DeploymentConfigNameRequiredException", answer
    cd.create_deployment_config(deploymentConfigName="A-z_0.9+=,@" + "x" * 89, minimumHealthyHosts=hosts)
    assert custom_names(cd) == ["A-z_0.9+=,@" + "x" * 89]


# -- GetDeploymentConfig / ListDeploymentConfigs ---------------------------------------------------


def test_get_of_an_unknown_config(server, cd):
    message = refused("DeploymentConfigDoesNotExistException", cd.get_deployment_config,
                      deploymentConfigName="Nope")
    assert "Nope" in message
    absent(cd, "codedeploydefault.oneatatime")  # predefined names are case-sensitive
    cli_refused(server.aws("deploy", "get-deployment-config", "--deployment-config-name", "CodeDeployDefault.Nope"),
                "DeploymentConfigDoesNotExistException")


def test_list_pages_through_custom_and_predefined_configs(server, cd):
    created = [f"Custom-{i:03}" for i in range(90)]
    for name in created:
        cd.create_deployment_config(deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    first = cd.list_deployment_configs()
    assert first.get("nextToken") and len(first["deploymentConfigsList"]) < 107
    listed = config_names(cd)
    assert len(listed) == 107 == len(set(listed))
    assert sorted(listed) == sorted(created + list(PREDEFINED))
    result = server.aws("deploy", "list-deployment-configs")
    assert result.ok, result.stderr
    assert sorted(result.json["deploymentConfigsList"]) == sorted(listed)
    refused("InvalidNextTokenException", cd.list_deployment_configs, nextToken="not-a-token")


# -- DeleteDeploymentConfig ------------------------------------------------------------------------


def test_delete_with_the_cli(server, cd):
    cd.create_deployment_config(deploymentConfigName="Gone", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    cd.create_deployment_config(deploymentConfigName="Kept", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    result = server.aws("deploy", "delete-deployment-config", "--deployment-config-name", "Gone")
    assert result.ok, result.stderr
    cli_refused(server.aws("deploy", "get-deployment-config", "--deployment-config-name", "Gone"),
                "DeploymentConfigDoesNotExistException")
    assert custom_names(cd) == ["Kept"]
    # The name is free again, for a different configuration.
    cd.create_deployment_config(deploymentConfigName="Gone", computePlatform="ECS", trafficRoutingConfig=ALL_AT_ONCE)
    assert cd.get_deployment_config(deploymentConfigName="Gone")["deploymentConfigInfo"]["computePlatform"] == "ECS"


def test_deleting_a_missing_config_succeeds(cd):
    cd.delete_deployment_config(deploymentConfigName="NeverExisted")
    cd.delete_deployment_config(deploymentConfigName="NeverExisted")
    assert custom_names(cd) == []


def test_predefined_configs_cannot_be_deleted(server, cd):
    cli_refused(server.aws("deploy", "delete-deployment-config", "--deployment-config-name",
                           "CodeDeployDefault.OneAtATime"), "InvalidOperationException")
    for name in PREDEFINED:
        refused("InvalidOperationException", cd.delete_deployment_config, deploymentConfigName=name)
    assert sorted(config_names(cd)) == sorted(PREDEFINED)
    cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.OneAtATime")


def test_config_in_use_by_a_group_cannot_be_deleted_until_the_group_is_gone(server, cd):
    cd.create_deployment_config(deploymentConfigName="Shared", minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 50})
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               deploymentConfigName="Shared")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="test", serviceRoleArn=ROLE,
                               deploymentConfigName="Shared")

    message = refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="Shared")
    assert "Shared" in message
    cli_refused(server.aws("deploy", "delete-deployment-config", "--deployment-config-name", "Shared"),
                "DeploymentConfigInUseException")
    info = cd.get_deployment_config(deploymentConfigName="Shared")["deploymentConfigInfo"]
    assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 50}

    cd.delete_deployment_group(applicationName="app", deploymentGroupName="prod")
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="Shared")
    cd.delete_deployment_group(applicationName="app", deploymentGroupName="test")
    result = server.aws("deploy", "delete-deployment-config", "--deployment-config-name", "Shared")
    assert result.ok, result.stderr
    absent(cd, "Shared")
    assert custom_names(cd) == []


def test_config_freed_when_its_group_switches_to_another(cd):
    cd.create_deployment_config(deploymentConfigName="Before", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               deploymentConfigName="Before")
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="Before")
    cd.update_deployment_group(applicationName="app", currentDeploymentGroupName="prod",
                               deploymentConfigName="CodeDeployDefault.AllAtOnce")
    cd.delete_deployment_config(deploymentConfigName="Before")
    absent(cd, "Before")


def test_custom_lambda_config_in_use_by_a_lambda_group(cd):
    cd.create_deployment_config(deploymentConfigName="LambdaSlow", computePlatform="Lambda",
                                trafficRoutingConfig=linear(50, 10))
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    cd.create_deployment_group(applicationName="fn", deploymentGroupName="live", serviceRoleArn=ROLE,
                               deploymentConfigName="LambdaSlow",
                               deploymentStyle={"deploymentType": "BLUE_GREEN",
                                                "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="LambdaSlow")
    cd.get_deployment_config(deploymentConfigName="LambdaSlow")


def test_config_in_use_by_an_unfinished_deployment_cannot_be_deleted(cd):
    cd.register_on_premises_instance(instanceName="web-1", iamUserArn="arn:aws:iam::123456789012:user/web-1")
    cd.add_tags_to_on_premises_instances(instanceNames=["web-1"], tags=[{"Key": "role", "Value": "web"}])
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}])
    cd.create_deployment_config(deploymentConfigName="JustThisOnce",
                                minimumHealthyHosts={"type": "HOST_COUNT", "value": 0})
    deployment = cd.create_deployment(
        applicationName="app", deploymentGroupName="prod", deploymentConfigName="JustThisOnce",
        revision={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app.zip", "bundleType": "zip"}},
    )["deploymentId"]
    assert cd.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"] not in ("Succeeded", "Failed", "Stopped")
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="JustThisOnce")
    cd.get_deployment_config(deploymentConfigName="JustThisOnce")
    # Once the deployment has finished, nothing holds the configuration.
    cd.stop_deployment(deploymentId=deployment)
    cd.delete_deployment_config(deploymentConfigName="JustThisOnce")
    refused("DeploymentConfigDoesNotExistException", cd.get_deployment_config, deploymentConfigName="JustThisOnce")
