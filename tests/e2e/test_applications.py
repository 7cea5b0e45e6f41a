"""Applications: CreateApplication, GetApplication, BatchGetApplications, ListApplications,
UpdateApplication and DeleteApplication, through boto3 and the aws CLI."""

import datetime
import re


from conftest import cli_refused, refused, utcnow

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"
S3_REVISION = {"revisionType": "S3", "s3Location": {"bucket": "bucket", "key": "app.zip", "bundleType": "zip"}}


def names(cd):
    return [name for page in cd.get_paginator("list_applications").paginate() for name in page["applications"]]


def account_id(cd):
    """The server's account id, read from the ARN of a freshly registered on-premises instance."""
    cd.register_on_premises_instance(instanceName="arn-probe", iamUserArn="arn:aws:iam::123456789012:user/arn-probe")
    arn = cd.get_on_premises_instance(instanceName="arn-probe")["instanceInfo"]["instanceArn"]
    return arn.split(":")[4]


# -- CreateApplication / GetApplication ------------------------------------------------------------


def test_create_defaults_to_server_and_get_shows_the_application(cd):
    before = utcnow()
    created = cd.create_application(applicationName="web-shop")
    assert UUID.match(created["applicationId"])
    app = cd.get_application(applicationName="web-shop")["application"]
    assert app["applicationId"] == created["applicationId"]
    assert app["applicationName"] == "web-shop"
    assert app["computePlatform"] == "Server"
    assert app["linkedToGitHub"] is False
    assert before - datetime.timedelta(seconds=5) <= app["createTime"] <= utcnow() + datetime.timedelta(seconds=5)


def test_create_each_compute_platform_with_the_cli(server, cd):
    ids = {"Server": cd.create_application(applicationName="app-Server")["applicationId"]}
    for platform in ["Lambda", "ECS"]:
        created = server.aws("deploy", "create-application", "--application-name", f"app-{platform}",
                             "--compute-platform", platform)
        assert created.ok, created.stderr
        assert UUID.match(created.json["applicationId"])
        ids[platform] = created.json["applicationId"]
    got = server.aws("deploy", "get-application", "--application-name", "app-Lambda")
    assert got.ok, got.stderr
    assert (got.json["application"]["applicationId"], got.json["application"]["computePlatform"]) == (
        ids["Lambda"], "Lambda")
    for platform, app_id in ids.items():
        app = cd.get_application(applicationName=f"app-{platform}")["application"]
        assert (app["applicationId"], app["computePlatform"]) == (app_id, platform)


def test_two_applications_get_different_ids(cd):
    first = cd.create_application(applicationName="one")["applicationId"]
    second = cd.create_application(applicationName="two")["applicationId"]
    assert first != second


def test_invalid_compute_platform_is_refused_and_creates_nothing(server, cd):
    refused("InvalidComputePlatformException", cd.create_application, applicationName="app", computePlatform="Mainframe")
    cli_refused(server.aws("deploy", "create-application", "--application-name", "app", "--compute-platform", "lambda"),
                "InvalidComputePlatformException")
    refused("ApplicationDoesNotExistException", cd.get_application, applicationName="app")
    assert names(cd) == []


def test_duplicate_name_is_refused_and_keeps_the_first(server, cd):
    first = cd.create_application(applicationName="app", computePlatform="Lambda")["applicationId"]
    message = refused("ApplicationAlreadyExistsException", cd.create_application, applicationName="app")
    assert "app" in message
    cli_refused(server.aws("deploy", "create-application", "--application-name", "app", "--compute-platform", "ECS"),
                "ApplicationAlreadyExistsException")
    app = cd.get_application(applicationName="app")["application"]
    assert (app["applicationId"], app["computePlatform"]) == (first, "Lambda")
    assert names(cd) == ["app"]


def test_illegal_names_are_refused_and_create_nothing(cd):
    for name in ["my app", "app/name", "app:name", "app*", "caf\u00e9", "x" * 101, "tab\tname", "a#b"]:
        refused("InvalidApplicationNameException", cd.create_application, applicationName=name)
    assert names(cd) == []


def test_every_allowed_character_and_100_characters_are_accepted(server, cd):
    allowed = "Az09._+=,@-"
    longest = "L" * 100
    cd.create_application(applicationName=allowed)
    result = server.aws("deploy", "create-application", "--application-name", longest)
    assert result.ok, result.stderr
    assert cd.get_application(applicationName=longest)["application"]["applicationName"] == longest
    assert sorted(names(cd)) == sorted([allowed, longest])


def test_missing_name_is_refused(server, cd):
    """boto3 and the CLI check for the name themselves, so the request is sent by hand."""
    for body in [{}, {"applicationName": ""}, {"computePlatform": "Server"}]:
        status, answer = server.raw("CodeDeploy_20141006.CreateApplication", body)
        assert (status, answer["__type"]) == (400, "ApplicationNameRequiredException"), answer
    assert names(cd) == []


def test_tags_given_at_creation_are_listed_for_the_application(server, cd):
    cd.create_application(applicationName="tagged", tags=[{"Key": "team", "Value": "payments"},
                                                          {"Key": "env", "Value": "prod"}])
    arn = f"arn:aws:codedeploy:{server.admin_key()[2]}:{account_id(cd)}:application:tagged"
    tags = cd.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("team", "payments")]


def test_tags_at_creation_through_the_cli(server, cd):
    result = server.aws("deploy", "create-application", "--application-name", "cli-tagged",
                        "--tags", "Key=owner,Value=ops", "Key=cost-center,Value=42")
    assert result.ok, result.stderr
    arn = f"arn:aws:codedeploy:{server.admin_key()[2]}:{account_id(cd)}:application:cli-tagged"
    listed = server.aws("deploy", "list-tags-for-resource", "--resource-arn", arn)
    assert listed.ok, listed.stderr
    assert sorted((t["Key"], t["Value"]) for t in listed.json["Tags"]) == [("cost-center", "42"), ("owner", "ops")]


def test_invalid_tags_at_creation_are_refused_and_create_nothing(cd):
    for tags in [
        [{"Key": "fine", "Value": "x"}, {"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "AWS:upper", "Value": "x"}],
        [{"Key": "k" * 129, "Value": "x"}],
        [{"Key": "ok", "Value": "v" * 257}],
        [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
    ]:
        refused("InvalidTagsToAddException", cd.create_application, applicationName="app", tags=tags)
    refused("ApplicationDoesNotExistException", cd.get_application, applicationName="app")
    assert names(cd) == []
    # At the limits, the same call succeeds.
    cd.create_application(applicationName="app", tags=[{"Key": "k" * 128, "Value": "v" * 256}]
                          + [{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    assert names(cd) == ["app"]


# -- GetApplication / BatchGetApplications ---------------------------------------------------------


def test_get_of_a_missing_application(server, cd):
    cd.create_application(applicationName="present")
    message = refused("ApplicationDoesNotExistException", cd.get_application, applicationName="absent")
    assert "absent" in message
    cli_refused(server.aws("deploy", "get-application", "--application-name", "Present"),
                "ApplicationDoesNotExistException")


def test_get_with_an_illegal_name(cd):
    refused("InvalidApplicationNameException", cd.get_application, applicationName="no spaces allowed")


def test_batch_get_answers_in_the_order_asked(server, cd):
    ids = {name: cd.create_application(applicationName=name, computePlatform=platform)["applicationId"]
           for name, platform in [("charlie", "Server"), ("alpha", "Lambda"), ("bravo", "ECS")]}
    infos = cd.batch_get_applications(applicationNames=["bravo", "charlie", "alpha"])["applicationsInfo"]
    assert [info["applicationName"] for info in infos] == ["bravo", "charlie", "alpha"]
    assert [info["applicationId"] for info in infos] == [ids["bravo"], ids["charlie"], ids["alpha"]]
    assert [info["computePlatform"] for info in infos] == ["ECS", "Server", "Lambda"]
    result = server.aws("deploy", "batch-get-applications", "--application-names", "alpha", "charlie")
    assert result.ok, result.stderr
    assert [info["applicationName"] for info in result.json["applicationsInfo"]] == ["alpha", "charlie"]


def test_batch_get_fails_whole_call_on_a_missing_name(server, cd):
    cd.create_application(applicationName="alpha")
    message = refused("ApplicationDoesNotExistException", cd.batch_get_applications,
                      applicationNames=["alpha", "ghost"])
    assert "ghost" in message
    cli_refused(server.aws("deploy", "batch-get-applications", "--application-names", "ghost", "alpha"),
                "ApplicationDoesNotExistException")


def test_batch_get_with_an_empty_list_answers_nothing(cd):
    cd.create_application(applicationName="alpha")
    assert cd.batch_get_applications(applicationNames=[]).get("applicationsInfo", []) == []


def test_batch_get_limit_is_100_names(cd):
    for i in range(100):
        cd.create_application(applicationName=f"app-{i:03}")
    batch = [f"app-{i:03}" for i in range(100)]
    exactly_one_page = cd.list_applications()
    assert exactly_one_page["applications"] == batch and "nextToken" not in exactly_one_page
    assert len(cd.batch_get_applications(applicationNames=batch)["applicationsInfo"]) == 100
    refused("BatchLimitExceededException", cd.batch_get_applications, applicationNames=batch + ["app-000"])


def test_batch_get_with_an_illegal_or_missing_name(server, cd):
    cd.create_application(applicationName="alpha")
    refused("InvalidApplicationNameException", cd.batch_get_applications, applicationNames=["alpha", "bad name"])
    status, answer = server.raw("CodeDeploy_20141006.BatchGetApplications", {})
    assert answer["__type"] == "ApplicationNameRequiredException", answer


# -- ListApplications ------------------------------------------------------------------------------


def test_list_pages_through_more_than_one_page(server, cd):
    created = [f"app-{i:03}" for i in range(107)]
    for name in reversed(created):
        cd.create_application(applicationName=name)

    first = cd.list_applications()
    assert 0 < len(first["applications"]) < 107 and first.get("nextToken")
    second = cd.list_applications(nextToken=first["nextToken"])
    assert not set(first["applications"]) & set(second["applications"])

    listed = names(cd)
    assert sorted(listed) == created and len(listed) == len(set(listed))

    result = server.aws("deploy", "list-applications")
    assert result.ok, result.stderr
    assert sorted(result.json["applications"]) == created

    cd.delete_application(applicationName="app-050")
    assert sorted(names(cd)) == [name for name in created if name != "app-050"]


def test_list_of_no_applications_is_empty(cd):
    answer = cd.list_applications()
    assert answer["applications"] == [] and "nextToken" not in answer


def test_a_bogus_next_token_is_refused(cd):
    cd.create_application(applicationName="alpha")
    for token in ["bogus", "eyJub3QiOiAiYSB0b2tlbiJ9", "!!!"]:
        refused("InvalidNextTokenException", cd.list_applications, nextToken=token)


# -- UpdateApplication -----------------------------------------------------------------------------


def test_rename_keeps_the_id_platform_and_deployment_groups(server, cd):
    app_id = cd.create_application(applicationName="old-name", computePlatform="Server")["applicationId"]
    before = cd.get_application(applicationName="old-name")["application"]
    group_id = cd.create_deployment_group(applicationName="old-name", deploymentGroupName="prod",
                                          serviceRoleArn=ROLE)["deploymentGroupId"]
    result = server.aws("deploy", "update-application", "--application-name", "old-name",
                        "--new-application-name", "new-name")
    assert result.ok, result.stderr

    app = cd.get_application(applicationName="new-name")["application"]
    assert app["applicationId"] == app_id
    assert app["computePlatform"] == "Server"
    assert app["createTime"] == before["createTime"]
    refused("ApplicationDoesNotExistException", cd.get_application, applicationName="old-name")
    assert names(cd) == ["new-name"]
    group = cd.get_deployment_group(applicationName="new-name", deploymentGroupName="prod")["deploymentGroupInfo"]
    assert group["deploymentGroupId"] == group_id
    assert group["applicationName"] == "new-name"


def test_the_old_name_is_free_after_a_rename(cd):
    first = cd.create_application(applicationName="name")["applicationId"]
    cd.update_application(applicationName="name", newApplicationName="other")
    second = cd.create_application(applicationName="name")["applicationId"]
    assert first != second
    assert cd.get_application(applicationName="other")["application"]["applicationId"] == first


def test_rename_onto_an_existing_name_is_refused_and_changes_nothing(server, cd):
    a = cd.create_application(applicationName="a")["applicationId"]
    b = cd.create_application(applicationName="b")["applicationId"]
    refused("ApplicationAlreadyExistsException", cd.update_application, applicationName="a", newApplicationName="b")
    cli_refused(server.aws("deploy", "update-application", "--application-name", "b", "--new-application-name", "a"),
                "ApplicationAlreadyExistsException")
    assert cd.get_application(applicationName="a")["application"]["applicationId"] == a
    assert cd.get_application(applicationName="b")["application"]["applicationId"] == b
    assert sorted(names(cd)) == ["a", "b"]


def test_rename_onto_its_own_name_is_accepted(cd):
    app_id = cd.create_application(applicationName="same")["applicationId"]
    cd.update_application(applicationName="same", newApplicationName="same")
    assert cd.get_application(applicationName="same")["application"]["applicationId"] == app_id


def test_rename_of_an_unknown_application(server, cd):
    cd.create_application(applicationName="taken")
    refused("ApplicationDoesNotExistException", cd.update_application,
            applicationName="ghost", newApplicationName="anything")
    cli_refused(server.aws("deploy", "update-application", "--application-name", "ghost",
                           "--new-application-name", "other"), "ApplicationDoesNotExistException")
    assert names(cd) == ["taken"]


def test_rename_to_an_illegal_or_missing_name_is_refused(server, cd):
    cd.create_application(applicationName="app")
    refused("InvalidApplicationNameException", cd.update_application, applicationName="app",
            newApplicationName="bad name")
    refused("InvalidApplicationNameException", cd.update_application, applicationName="app",
            newApplicationName="x" * 101)
    status, answer = server.raw("CodeDeploy_20141006.UpdateApplication", {"applicationName": "app"})
    assert answer["__type"] == "ApplicationNameRequiredException", answer
    status, answer = server.raw("CodeDeploy_20141006.UpdateApplication", {"newApplicationName": "x"})
    assert answer["__type"] == "ApplicationNameRequiredException", answer
    assert names(cd) == ["app"]


# -- DeleteApplication -----------------------------------------------------------------------------


def test_delete_removes_the_application_with_its_groups_and_revisions(server, cd):
    old_id = cd.create_application(applicationName="app")["applicationId"]
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE)
    cd.create_deployment_group(applicationName="app", deploymentGroupName="test", serviceRoleArn=ROLE)
    cd.register_application_revision(applicationName="app", revision=S3_REVISION)
    assert len(cd.list_deployment_groups(applicationName="app")["deploymentGroups"]) == 2
    assert len(cd.list_application_revisions(applicationName="app")["revisions"]) == 1

    result = server.aws("deploy", "delete-application", "--application-name", "app")
    assert result.ok, result.stderr
    assert names(cd) == []
    refused("ApplicationDoesNotExistException", cd.get_application, applicationName="app")
    refused("ApplicationDoesNotExistException", cd.list_deployment_groups, applicationName="app")

    new_id = cd.create_application(applicationName="app")["applicationId"]
    assert new_id != old_id
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == []
    assert cd.list_application_revisions(applicationName="app")["revisions"] == []
    refused("DeploymentGroupDoesNotExistException", cd.get_deployment_group,
            applicationName="app", deploymentGroupName="prod")
    refused("RevisionDoesNotExistException", cd.get_application_revision, applicationName="app", revision=S3_REVISION)
    # The group names are free again in the new application.
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE)


def test_delete_leaves_other_applications_alone(cd):
    cd.create_application(applicationName="keep")
    cd.create_deployment_group(applicationName="keep", deploymentGroupName="prod", serviceRoleArn=ROLE)
    cd.register_application_revision(applicationName="keep", revision=S3_REVISION)
    cd.create_application(applicationName="drop")
    cd.create_deployment_group(applicationName="drop", deploymentGroupName="prod", serviceRoleArn=ROLE)
    cd.delete_application(applicationName="drop")
    assert names(cd) == ["keep"]
    assert cd.list_deployment_groups(applicationName="keep")["deploymentGroups"] == ["prod"]
    assert len(cd.list_application_revisions(applicationName="keep")["revisions"]) == 1


def test_delete_frees_the_custom_config_its_groups_used(cd):
    cd.create_deployment_config(deploymentConfigName="Custom", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               deploymentConfigName="Custom")
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="Custom")
    cd.delete_application(applicationName="app")
    cd.delete_deployment_config(deploymentConfigName="Custom")
    refused("DeploymentConfigDoesNotExistException", cd.get_deployment_config, deploymentConfigName="Custom")


def test_deleting_twice_or_a_missing_application_succeeds(server, cd):
    cd.create_application(applicationName="app")
    cd.delete_application(applicationName="app")
    cd.delete_application(applicationName="app")
    result = server.aws("deploy", "delete-application", "--application-name", "never-existed")
    assert result.ok, result.stderr
    assert names(cd) == []


def test_delete_with_an_illegal_or_missing_name(server, cd):
    cd.create_application(applicationName="app")
    refused("InvalidApplicationNameException", cd.delete_application, applicationName="bad name")
    status, answer = server.raw("CodeDeploy_20141006.DeleteApplication", {})
    assert answer["__type"] == "ApplicationNameRequiredException", answer
    assert names(cd) == ["app"]
