"""Resource tags (TagResource, UntagResource, ListTagsForResource) on application, deployment group
and deployment configuration ARNs; and the GitHub-connection and CloudFormation calls
(ListGitHubAccountTokenNames, DeleteGitHubAccountToken, DeleteResourcesByExternalId)."""

import pytest

from conftest import cli_refused, refused

ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"


class Arns:
    """ARNs of the server's resources: its region comes from the credentials file the server wrote,
    its account id from the ARN it gives a registered on-premises instance."""

    def __init__(self, server, cd):
        self.region = server.admin_key()[2]
        cd.register_on_premises_instance(instanceName="arn-probe",
                                         iamUserArn="arn:aws:iam::123456789012:user/arn-probe")
        self.instance = cd.get_on_premises_instance(instanceName="arn-probe")["instanceInfo"]["instanceArn"]
        _, _, service, region, self.account, resource = self.instance.split(":", 5)
        assert (service, region) == ("codedeploy", self.region) and resource.startswith("instance/arn-probe_")
        assert len(self.account) == 12 and self.account.isdigit()

    def app(self, name):
        return f"arn:aws:codedeploy:{self.region}:{self.account}:application:{name}"

    def group(self, app, group):
        return f"arn:aws:codedeploy:{self.region}:{self.account}:deploymentgroup:{app}/{group}"

    def config(self, name):
        return f"arn:aws:codedeploy:{self.region}:{self.account}:deploymentconfig:{name}"


@pytest.fixture
def arns(server, cd):
    return Arns(server, cd)


def tags_of(cd, arn):
    answer = cd.list_tags_for_resource(ResourceArn=arn)
    assert "NextToken" not in answer
    return {tag["Key"]: tag["Value"] for tag in answer["Tags"]}


def tag(cd, arn, **tags):
    cd.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


# -- applications ----------------------------------------------------------------------------------


def test_application_tags_with_the_cli(server, cd, arns):
    cd.create_application(applicationName="shop")
    arn = arns.app("shop")
    result = server.aws("deploy", "tag-resource", "--resource-arn", arn,
                        "--tags", "Key=team,Value=payments", "Key=env,Value=staging")
    assert result.ok, result.stderr
    listed = server.aws("deploy", "list-tags-for-resource", "--resource-arn", arn)
    assert listed.ok, listed.stderr
    assert sorted((t["Key"], t["Value"]) for t in listed.json["Tags"]) == [("env", "staging"), ("team", "payments")]

    # A second call overwrites one value and adds a key; the rest stays.
    result = server.aws("deploy", "tag-resource", "--resource-arn", arn,
                        "--tags", "Key=env,Value=prod", "Key=owner,Value=ana")
    assert result.ok, result.stderr
    assert tags_of(cd, arn) == {"team": "payments", "env": "prod", "owner": "ana"}

    result = server.aws("deploy", "untag-resource", "--resource-arn", arn, "--tag-keys", "team", "owner")
    assert result.ok, result.stderr
    listed = server.aws("deploy", "list-tags-for-resource", "--resource-arn", arn)
    assert listed.ok, listed.stderr
    assert listed.json["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_tags_are_per_application_case_sensitive_and_may_be_empty(cd, arns):
    cd.create_application(applicationName="a", tags=[{"Key": "keep", "Value": "1"}])
    cd.create_application(applicationName="b")
    tag(cd, arns.app("a"), Env="prod", env="dev", flag="")
    tag(cd, arns.app("b"), Env="test")
    assert tags_of(cd, arns.app("a")) == {"keep": "1", "Env": "prod", "env": "dev", "flag": ""}
    assert tags_of(cd, arns.app("b")) == {"Env": "test"}
    # Untagging keys that are not there (or differ in case) changes nothing.
    cd.untag_resource(ResourceArn=arns.app("a"), TagKeys=["never-set", "KEEP"])
    assert tags_of(cd, arns.app("a")) == {"keep": "1", "Env": "prod", "env": "dev", "flag": ""}
    cd.untag_resource(ResourceArn=arns.app("a"), TagKeys=["env"])
    assert tags_of(cd, arns.app("a")) == {"keep": "1", "Env": "prod", "flag": ""}
    assert tags_of(cd, arns.app("b")) == {"Env": "test"}


def test_tags_follow_a_renamed_application(server, cd, arns):
    cd.create_application(applicationName="before", tags=[{"Key": "team", "Value": "core"}])
    cd.create_deployment_group(applicationName="before", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               tags=[{"Key": "tier", "Value": "1"}])
    cd.update_application(applicationName="before", newApplicationName="after")
    assert tags_of(cd, arns.app("after")) == {"team": "core"}
    assert tags_of(cd, arns.group("after", "prod")) == {"tier": "1"}
    refused("ApplicationDoesNotExistException", cd.tag_resource, ResourceArn=arns.app("before"),
            Tags=[{"Key": "k", "Value": "v"}])
    # A new application under the old name starts without tags.
    cd.create_application(applicationName="before")
    assert tags_of(cd, arns.app("before")) == {}
    listed = server.aws("deploy", "list-tags-for-resource", "--resource-arn", arns.app("after"))
    assert listed.ok and listed.json["Tags"] == [{"Key": "team", "Value": "core"}]


def test_application_tags_go_with_the_application(cd, arns):
    cd.create_application(applicationName="app", tags=[{"Key": "a", "Value": "1"}])
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE)
    tag(cd, arns.group("app", "dg"), b="2")
    cd.delete_application(applicationName="app")
    refused("ApplicationDoesNotExistException", cd.tag_resource, ResourceArn=arns.app("app"),
            Tags=[{"Key": "k", "Value": "v"}])
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE)
    assert tags_of(cd, arns.app("app")) == {}
    assert tags_of(cd, arns.group("app", "dg")) == {}


# -- deployment groups -----------------------------------------------------------------------------


def test_deployment_group_tags(cd, arns):
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="prod", serviceRoleArn=ROLE,
                               tags=[{"Key": "created", "Value": "with-group"}])
    cd.create_deployment_group(applicationName="app", deploymentGroupName="test", serviceRoleArn=ROLE)
    arn = arns.group("app", "prod")
    assert tags_of(cd, arn) == {"created": "with-group"}
    tag(cd, arn, created="later", region="eu")
    assert tags_of(cd, arn) == {"created": "later", "region": "eu"}
    cd.untag_resource(ResourceArn=arn, TagKeys=["created"])
    assert tags_of(cd, arn) == {"region": "eu"}
    # Neither the other group nor the application share them.
    assert tags_of(cd, arns.group("app", "test")) == {}
    assert tags_of(cd, arns.app("app")) == {}


def test_deployment_group_tags_go_with_the_group(server, cd, arns):
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE)
    result = server.aws("deploy", "tag-resource", "--resource-arn", arns.group("app", "dg"), "--tags",
                        "Key=k,Value=v")
    assert result.ok, result.stderr
    cd.delete_deployment_group(applicationName="app", deploymentGroupName="dg")
    cli_refused(server.aws("deploy", "tag-resource", "--resource-arn", arns.group("app", "dg"), "--tags",
                           "Key=k,Value=v"), "DeploymentGroupDoesNotExistException")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE)
    assert tags_of(cd, arns.group("app", "dg")) == {}


def test_tags_follow_a_renamed_deployment_group(cd, arns):
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="old", serviceRoleArn=ROLE)
    tag(cd, arns.group("app", "old"), k="v")
    cd.update_deployment_group(applicationName="app", currentDeploymentGroupName="old", newDeploymentGroupName="new")
    assert tags_of(cd, arns.group("app", "new")) == {"k": "v"}


# -- deployment configurations ---------------------------------------------------------------------


def test_deployment_config_tags(server, cd, arns):
    cd.create_deployment_config(deploymentConfigName="Custom", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    arn = arns.config("Custom")
    result = server.aws("deploy", "tag-resource", "--resource-arn", arn, "--tags", "Key=purpose,Value=canary")
    assert result.ok, result.stderr
    tag(cd, arn, purpose="batch", owner="ops")
    assert tags_of(cd, arn) == {"purpose": "batch", "owner": "ops"}
    result = server.aws("deploy", "untag-resource", "--resource-arn", arn, "--tag-keys", "purpose")
    assert result.ok, result.stderr
    assert tags_of(cd, arn) == {"owner": "ops"}


def test_deployment_config_tags_go_with_the_config(cd, arns):
    cd.create_deployment_config(deploymentConfigName="Custom", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    tag(cd, arns.config("Custom"), k="v")
    cd.delete_deployment_config(deploymentConfigName="Custom")
    refused("DeploymentConfigDoesNotExistException", cd.tag_resource, ResourceArn=arns.config("Custom"),
            Tags=[{"Key": "k", "Value": "v"}])
    cd.create_deployment_config(deploymentConfigName="Custom", computePlatform="Lambda",
                                trafficRoutingConfig={"type": "AllAtOnce"})
    assert tags_of(cd, arns.config("Custom")) == {}


def test_a_refused_config_delete_keeps_its_tags(cd, arns):
    cd.create_deployment_config(deploymentConfigName="Used", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    tag(cd, arns.config("Used"), k="v")
    cd.create_application(applicationName="app")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE,
                               deploymentConfigName="Used")
    refused("DeploymentConfigInUseException", cd.delete_deployment_config, deploymentConfigName="Used")
    assert tags_of(cd, arns.config("Used")) == {"k": "v"}


# -- errors ----------------------------------------------------------------------------------------


def test_missing_arn(server):
    for target, body in [
        ("TagResource", {"Tags": [{"Key": "k", "Value": "v"}]}),
        ("TagResource", {"ResourceArn": "", "Tags": [{"Key": "k", "Value": "v"}]}),
        ("UntagResource", {"TagKeys": ["k"]}),
        ("ListTagsForResource", {}),
    ]:
        status, answer = server.raw(f"CodeDeploy_20141006.{target}", body)
        assert (status, answer["__type"]) == (400, "ResourceArnRequiredException"), (target, answer)


def test_not_an_arn(server, cd, arns):
    cd.create_application(applicationName="app")
    for arn in ["app", "application:app", "arn:aws:codedeploy", f"urn:aws:codedeploy:{arns.region}:{arns.account}:application:app"]:
        refused("InvalidArnException", cd.tag_resource, ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
        refused("InvalidArnException", cd.untag_resource, ResourceArn=arn, TagKeys=["k"])
        refused("InvalidArnException", cd.list_tags_for_resource, ResourceArn=arn)
    cli_refused(server.aws("deploy", "list-tags-for-resource", "--resource-arn", "not-an-arn"),
                "InvalidArnException")
    # A deployment group ARN names the application and the group.
    refused("InvalidArnException", cd.tag_resource,
            ResourceArn=f"arn:aws:codedeploy:{arns.region}:{arns.account}:deploymentgroup:app",
            Tags=[{"Key": "k", "Value": "v"}])
    assert tags_of(cd, arns.app("app")) == {}


def test_arns_of_other_resources_are_not_supported(server, cd, arns):
    cd.create_application(applicationName="app")
    for arn in [
        arns.instance,
        f"arn:aws:ec2:{arns.region}:{arns.account}:instance/i-0123456789abcdef0",
        "arn:aws:s3:::my-bucket",
        f"arn:aws:codedeploy:{arns.region}:{arns.account}:deployment:d-ABCDEFGHI",
        f"arn:aws:lambda:{arns.region}:{arns.account}:application:app",
    ]:
        refused("ArnNotSupportedException", cd.tag_resource, ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
        refused("ArnNotSupportedException", cd.untag_resource, ResourceArn=arn, TagKeys=["k"])
        refused("ArnNotSupportedException", cd.list_tags_for_resource, ResourceArn=arn)
    cli_refused(server.aws("deploy", "tag-resource", "--resource-arn", arns.instance, "--tags", "Key=k,Value=v"),
                "ArnNotSupportedException")
    # Instance tags are their own (AddTagsToOnPremisesInstances), untouched by the refused calls.
    assert cd.get_on_premises_instance(instanceName="arn-probe")["instanceInfo"]["tags"] == []


def test_unknown_resources(server, cd, arns):
    cd.create_application(applicationName="app")
    tags = [{"Key": "k", "Value": "v"}]
    for arn, code in [
        (arns.app("ghost"), "ApplicationDoesNotExistException"),
        (arns.group("ghost", "dg"), "ApplicationDoesNotExistException"),
        (arns.group("app", "ghost"), "DeploymentGroupDoesNotExistException"),
        (arns.config("Ghost"), "DeploymentConfigDoesNotExistException"),
        # The server's own resources exist only in its account and region.
        (f"arn:aws:codedeploy:{arns.region}:000000000000:application:app", "ApplicationDoesNotExistException"),
        (f"arn:aws:codedeploy:xx-nowhere-1:{arns.account}:application:app", "ApplicationDoesNotExistException"),
        (f"arn:aws-cn:codedeploy:{arns.region}:{arns.account}:application:app", "ApplicationDoesNotExistException"),
    ]:
        refused(code, cd.tag_resource, ResourceArn=arn, Tags=tags)
        refused(code, cd.untag_resource, ResourceArn=arn, TagKeys=["k"])
    cli_refused(server.aws("deploy", "untag-resource", "--resource-arn", arns.app("ghost"), "--tag-keys", "k"),
                "ApplicationDoesNotExistException")
    # Nothing was kept for the missing resources: creating them shows no tags.
    cd.create_application(applicationName="ghost")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="ghost", serviceRoleArn=ROLE)
    cd.create_deployment_config(deploymentConfigName="Ghost", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})
    for arn in [arns.app("ghost"), arns.group("app", "ghost"), arns.config("Ghost"), arns.app("app")]:
        assert tags_of(cd, arn) == {}


def test_listing_tags_of_an_unknown_resource_finds_none(cd, arns):
    """ListTagsForResource's model lists no "does not exist" error: a missing resource has no tags."""
    for arn in [arns.app("ghost"), arns.group("ghost", "dg"), arns.config("Ghost")]:
        assert tags_of(cd, arn) == {}


def test_listing_tags_with_a_foreign_next_token_still_lists_them_all(cd, arns):
    """ListTagsForResource's model lists no InvalidNextTokenException; every tag of a resource (at
    most 50) fits in one page, so a token that is not the server's own is ignored."""
    cd.create_application(applicationName="app", tags=[{"Key": f"k{i:02}", "Value": "v"} for i in range(50)])
    answer = cd.list_tags_for_resource(ResourceArn=arns.app("app"), NextToken="bogus")
    assert len(answer["Tags"]) == 50 and "NextToken" not in answer
    assert [t["Key"] for t in answer["Tags"]] == [f"k{i:02}" for i in range(50)]


def test_empty_tags_or_keys_are_refused(server, cd, arns):
    cd.create_application(applicationName="app", tags=[{"Key": "k", "Value": "v"}])
    refused("TagRequiredException", cd.tag_resource, ResourceArn=arns.app("app"), Tags=[])
    refused("TagRequiredException", cd.untag_resource, ResourceArn=arns.app("app"), TagKeys=[])
    status, answer = server.raw("CodeDeploy_20141006.TagResource", {"ResourceArn": arns.app("app")})
    assert answer["__type"] == "TagRequiredException", answer
    status, answer = server.raw("CodeDeploy_20141006.UntagResource", {"ResourceArn": arns.app("app")})
    assert answer["__type"] == "TagRequiredException", answer
    assert tags_of(cd, arns.app("app")) == {"k": "v"}


def test_invalid_tags_are_refused_and_nothing_is_written(server, cd, arns):
    cd.create_application(applicationName="app", tags=[{"Key": "keep", "Value": "1"}])
    arn = arns.app("app")
    for tags in [
        [{"Key": "good", "Value": "x"}, {"Key": "aws:cloudformation:stack-name", "Value": "x"}],
        [{"Key": "keep", "Value": "2"}, {"Key": "k" * 129, "Value": "x"}],
        [{"Key": "long-value", "Value": "v" * 257}],
        [{"Key": "", "Value": "x"}],
    ]:
        refused("InvalidTagsToAddException", cd.tag_resource, ResourceArn=arn, Tags=tags)
    cli_refused(server.aws("deploy", "tag-resource", "--resource-arn", arn, "--tags", "Key=aws:owner,Value=me"),
                "InvalidTagsToAddException")
    assert tags_of(cd, arn) == {"keep": "1"}
    # The longest key and value are accepted.
    tag(cd, arn, **{"k" * 128: "v" * 256})
    assert tags_of(cd, arn) == {"keep": "1", "k" * 128: "v" * 256}


def test_at_most_50_tags_per_resource(cd, arns):
    cd.create_application(applicationName="app")
    arn = arns.app("app")
    tag(cd, arn, **{f"first-{i:02}": "x" for i in range(30)})
    refused("InvalidTagsToAddException", cd.tag_resource, ResourceArn=arn,
            Tags=[{"Key": f"second-{i:02}", "Value": "y"} for i in range(21)])
    assert len(tags_of(cd, arn)) == 30
    # Overwriting existing keys does not count against the limit.
    tag(cd, arn, **{f"first-{i:02}": "z" for i in range(30)}, **{f"second-{i:02}": "y" for i in range(20)})
    tags = tags_of(cd, arn)
    assert len(tags) == 50 and tags["first-00"] == "z"
    refused("InvalidTagsToAddException", cd.tag_resource, ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    assert len(tags_of(cd, arn)) == 50


# -- GitHub connections and CloudFormation ---------------------------------------------------------


def test_no_github_tokens_are_listed(server, cd):
    answer = cd.list_git_hub_account_token_names()
    assert answer["tokenNameList"] == [] and "nextToken" not in answer
    result = server.aws("deploy", "list-git-hub-account-token-names")
    assert result.ok, result.stderr
    assert result.json["tokenNameList"] == []
    refused("InvalidNextTokenException", cd.list_git_hub_account_token_names, nextToken="bogus")


def test_deleting_a_github_token_that_does_not_exist(server, cd):
    message = refused("GitHubAccountTokenDoesNotExistException", cd.delete_git_hub_account_token, tokenName="my-github")
    assert "my-github" in message
    cli_refused(server.aws("deploy", "delete-git-hub-account-token", "--token-name", "octocat"),
                "GitHubAccountTokenDoesNotExistException")
    status, answer = server.raw("CodeDeploy_20141006.DeleteGitHubAccountToken", {})
    assert answer["__type"] == "GitHubAccountTokenNameRequiredException", answer


def test_delete_resources_by_external_id_succeeds_and_touches_nothing(server, cd, arns):
    cd.create_application(applicationName="app", tags=[{"Key": "k", "Value": "v"}])
    cd.create_deployment_group(applicationName="app", deploymentGroupName="dg", serviceRoleArn=ROLE)
    answer = cd.delete_resources_by_external_id(externalId="arn:aws:cloudformation:stack/x")
    assert set(answer) == {"ResponseMetadata"}
    result = server.aws("deploy", "delete-resources-by-external-id", "--external-id", "stack-123")
    assert result.ok, result.stderr
    status, body = server.raw("CodeDeploy_20141006.DeleteResourcesByExternalId", {})
    assert status == 200, body
    assert cd.list_applications()["applications"] == ["app"]
    assert cd.list_deployment_groups(applicationName="app")["deploymentGroups"] == ["dg"]
    assert tags_of(cd, arns.app("app")) == {"k": "v"}
