"""Application revisions: registration per compute platform, reads, listing with filters, sorting
and pages, and the registration CreateDeployment does for its revision."""

import hashlib
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, refusal

ROLE = "arn:aws:iam::123456789012:role/CodeDeployService"
LAMBDA_APPSPEC = (
    "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
    "        Name: fn\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n"
)
ECS_APPSPEC = json.dumps({
    "version": 0.0,
    "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80}}}}],
})


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def s3(bucket="bundles", key="app/v1.zip", bundle="zip", **extra):
    return {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key, "bundleType": bundle, **extra}}


def github(repository="octo/app", commit="0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"):
    return {"revisionType": "GitHub", "gitHubLocation": {"repository": repository, "commitId": commit}}


def appspec(content, digest=None):
    body = {} if content is None else {"content": content}
    if digest is not None:
        body["sha256"] = digest
    return {"revisionType": "AppSpecContent", "appSpecContent": body}


def listed(cd, app, **filters):
    revisions, token = [], None
    while True:
        page = cd.list_application_revisions(applicationName=app, **filters, **({"nextToken": token} if token else {}))
        revisions += page["revisions"]
        token = page.get("nextToken")
        if not token:
            return revisions


def keys(revisions):
    return [revision["s3Location"]["key"] for revision in revisions]


@pytest.fixture
def app(cd):
    cd.create_application(applicationName="web", computePlatform="Server")
    return "web"


# -- registration ---------------------------------------------------------------------------


def test_register_and_get_an_s3_revision_through_the_cli(server, cd, app):
    before = time.time()
    result = server.aws("deploy", "register-application-revision", "--application-name", app,
                        "--s3-location", "bucket=bundles,key=app/v1.zip,bundleType=zip,eTag=abc123",
                        "--description", "first build")
    assert result.ok, result.stderr
    shown = server.aws("deploy", "get-application-revision", "--application-name", app,
                       "--s3-location", "bucket=bundles,key=app/v1.zip,bundleType=zip,eTag=abc123")
    assert shown.ok, shown.stderr
    answer = shown.json
    assert answer["applicationName"] == app
    assert answer["revision"] == s3(eTag="abc123")
    info = answer["revisionInfo"]
    assert info["description"] == "first build"
    assert before - 1 <= info["registerTime"] <= time.time() + 1
    assert "firstUsedTime" not in info and "lastUsedTime" not in info
    assert info["deploymentGroups"] == []


def test_server_takes_archive_bundles(cd, app):
    for bundle in ("tar", "tgz", "zip"):
        revision = s3(key=f"app.{bundle}", bundle=bundle)
        cd.register_application_revision(applicationName=app, revision=revision)
        assert cd.get_application_revision(applicationName=app, revision=revision)["revision"] == revision


def test_server_takes_github_revisions_through_the_cli(server, cd, app):
    result = server.aws("deploy", "register-application-revision", "--application-name", app,
                        "--github-location", "repository=octo/app,commitId=0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6")
    assert result.ok, result.stderr
    got = cd.get_application_revision(applicationName=app, revision=github())
    assert got["revision"] == github()
    assert "description" not in got["revisionInfo"] or got["revisionInfo"]["description"] in ("", None)


UNFIT = {
    "Server": [
        s3(bundle="YAML", key="appspec.yaml"),
        s3(bundle="JSON", key="appspec.json"),
        appspec(LAMBDA_APPSPEC),
        {"revisionType": "String", "string": {"content": LAMBDA_APPSPEC}},
        {"revisionType": "Git", "gitHubLocation": {"repository": "a/b", "commitId": "c"}},
        {"revisionType": "S3"},
        s3(bundle="rar"),
        s3(bucket=""),
        github(repository="no-owner"),
        {"revisionType": "GitHub", "gitHubLocation": {"repository": "a/b"}},
    ],
    "Lambda": [s3(bundle="zip"), github(), appspec(""), appspec(None)],
    "ECS": [s3(bundle="tgz", key="app.tgz"), github(), {"revisionType": "String", "string": {"content": ECS_APPSPEC}}],
}


@pytest.mark.parametrize("platform", sorted(UNFIT))
def test_a_revision_the_platform_cannot_take_is_refused(cd, platform):
    cd.create_application(applicationName="app", computePlatform=platform)
    for revision in UNFIT[platform]:
        with pytest.raises(ClientError) as excinfo:
            cd.register_application_revision(applicationName="app", revision=revision)
        assert error_code(excinfo) == "InvalidRevisionException", revision
    assert cd.list_application_revisions(applicationName="app")["revisions"] == []


@pytest.mark.parametrize("platform", ["Lambda", "ECS"])
def test_lambda_and_ecs_take_appspec_objects_in_s3(cd, platform):
    cd.create_application(applicationName="app", computePlatform=platform)
    revisions = [s3(key=f"appspec.{bundle.lower()}", bundle=bundle) for bundle in ("JSON", "YAML")]
    for revision in revisions:
        cd.register_application_revision(applicationName="app", revision=revision)
    assert sorted(cd.list_application_revisions(applicationName="app")["revisions"], key=str) == sorted(revisions, key=str)


@pytest.mark.parametrize("platform, content", [("Lambda", LAMBDA_APPSPEC), ("ECS", ECS_APPSPEC)])
def test_inline_appspec_gets_its_sha256_and_only_get_shows_the_content(cd, platform, content):
    cd.create_application(applicationName="app", computePlatform=platform)
    cd.register_application_revision(applicationName="app", revision=appspec(content), description="inline")
    expected = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content, "sha256": sha256(content)}}

    got = cd.get_application_revision(applicationName="app", revision=appspec(content))
    assert got["revision"] == expected
    assert got["revisionInfo"]["description"] == "inline"
    # The sha256 alone finds it too: that is all GetDeployment and the list calls show.
    by_digest = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": sha256(content)}}
    assert cd.get_application_revision(applicationName="app", revision=by_digest)["revision"] == expected

    summary = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": sha256(content)}}
    assert cd.list_application_revisions(applicationName="app")["revisions"] == [summary]
    batch = cd.batch_get_application_revisions(applicationName="app", revisions=[appspec(content)])
    assert [r["revisionLocation"] for r in batch["revisions"]] == [summary]


def test_inline_appspec_with_the_right_sha256_is_the_same_revision(cd):
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    cd.register_application_revision(applicationName="fn", revision=appspec(LAMBDA_APPSPEC))
    cd.register_application_revision(applicationName="fn", revision=appspec(LAMBDA_APPSPEC, sha256(LAMBDA_APPSPEC)))
    assert len(cd.list_application_revisions(applicationName="fn")["revisions"]) == 1


def test_inline_appspec_with_a_wrong_sha256_is_refused(cd):
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    code, message = refusal(cd.register_application_revision, applicationName="fn",
                            revision=appspec(LAMBDA_APPSPEC, sha256("something else")))
    assert code == "InvalidRevisionException"
    assert "sha256" in message
    assert cd.list_application_revisions(applicationName="fn")["revisions"] == []


def test_lambda_takes_the_deprecated_string_revision(cd):
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    revision = {"revisionType": "String", "string": {"content": LAMBDA_APPSPEC}}
    cd.register_application_revision(applicationName="fn", revision=revision)
    got = cd.get_application_revision(applicationName="fn", revision=revision)["revision"]
    assert got["string"] == {"content": LAMBDA_APPSPEC, "sha256": sha256(LAMBDA_APPSPEC)}


def test_register_needs_a_revision(server, cd, app):
    status, body = server.raw("CodeDeploy_20141006.RegisterApplicationRevision", {"applicationName": app})
    assert (status, body["__type"]) == (400, "RevisionRequiredException")
    status, body = server.raw("CodeDeploy_20141006.GetApplicationRevision", {"applicationName": app})
    assert body["__type"] == "RevisionRequiredException"


def test_description_is_limited_to_256_characters(cd, app):
    code, _ = refusal(cd.register_application_revision, applicationName=app, revision=s3(), description="d" * 257)
    assert code == "DescriptionTooLongException"
    assert cd.list_application_revisions(applicationName=app)["revisions"] == []
    cd.register_application_revision(applicationName=app, revision=s3(), description="d" * 256)
    assert cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]["description"] == "d" * 256


def test_register_under_an_unknown_application(cd):
    code, _ = refusal(cd.register_application_revision, applicationName="nope", revision=s3())
    assert code == "ApplicationDoesNotExistException"


def test_registering_again_updates_the_description_without_a_duplicate(cd, app):
    cd.register_application_revision(applicationName=app, revision=s3(), description="old")
    cd.register_application_revision(applicationName=app, revision=s3(), description="new")
    assert cd.list_application_revisions(applicationName=app)["revisions"] == [s3()]
    assert cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]["description"] == "new"


def test_s3_identity_is_bucket_key_bundle_version_and_etag(cd, app):
    cd.register_application_revision(applicationName=app, revision=s3(eTag='"abc"'))
    # The same object: quotes around the ETag do not matter.
    assert cd.get_application_revision(applicationName=app, revision=s3(eTag="abc"))
    for other in (s3(eTag="def"), s3(version="v2"), s3(bundle="tgz"), s3(key="app/v2.zip"), s3(bucket="other")):
        code, _ = refusal(cd.get_application_revision, applicationName=app, revision=other)
        assert code == "RevisionDoesNotExistException"


# -- reads ----------------------------------------------------------------------------------


def test_get_unknown_revision_and_application(server, cd, app):
    code, _ = refusal(cd.get_application_revision, applicationName=app, revision=s3())
    assert code == "RevisionDoesNotExistException"
    code, _ = refusal(cd.get_application_revision, applicationName="nope", revision=s3())
    assert code == "ApplicationDoesNotExistException"
    result = server.aws("deploy", "get-application-revision", "--application-name", app,
                        "--s3-location", "bucket=bundles,key=missing.zip,bundleType=zip")
    assert not result.ok and "RevisionDoesNotExistException" in result.stderr


def test_batch_get_reports_misses(cd, app):
    cd.register_application_revision(applicationName=app, revision=s3(), description="known")
    answer = cd.batch_get_application_revisions(
        applicationName=app, revisions=[s3(), s3(key="missing-1.zip"), s3(key="missing-2.zip")])
    assert answer["applicationName"] == app
    assert [r["revisionLocation"] for r in answer["revisions"]] == [s3()]
    assert answer["revisions"][0]["genericRevisionInfo"]["description"] == "known"
    assert answer["errorMessage"]
    complete = cd.batch_get_application_revisions(applicationName=app, revisions=[s3()])
    assert not complete.get("errorMessage")


def test_batch_get_limit(cd, app):
    many = [s3(key=f"k{i}.zip") for i in range(26)]
    code, _ = refusal(cd.batch_get_application_revisions, applicationName=app, revisions=many)
    assert code == "BatchLimitExceededException"
    assert cd.batch_get_application_revisions(applicationName=app, revisions=many[:25])["revisions"] == []


# -- listing --------------------------------------------------------------------------------


def test_list_filters_by_bucket_and_key_prefix(server, cd, app):
    for bucket, key in [("b1", "web/v1.zip"), ("b1", "web/v2.zip"), ("b1", "api/v1.zip"), ("b2", "web/v1.zip")]:
        cd.register_application_revision(applicationName=app, revision=s3(bucket=bucket, key=key))
    cd.register_application_revision(applicationName=app, revision=github())
    assert len(listed(cd, app)) == 5
    assert sorted(keys(listed(cd, app, s3Bucket="b1"))) == ["api/v1.zip", "web/v1.zip", "web/v2.zip"]
    result = server.aws("deploy", "list-application-revisions", "--application-name", app,
                        "--s3-bucket", "b1", "--s3-key-prefix", "web/")
    assert result.ok, result.stderr
    assert sorted(keys(result.json["revisions"])) == ["web/v1.zip", "web/v2.zip"]
    assert listed(cd, app, s3Bucket="b3") == []


def test_key_prefix_needs_a_bucket(server, cd, app):
    code, _ = refusal(cd.list_application_revisions, applicationName=app, s3KeyPrefix="web/")
    assert code == "BucketNameFilterRequiredException"
    result = server.aws("deploy", "list-application-revisions", "--application-name", app, "--s3-key-prefix", "web/")
    assert not result.ok and "BucketNameFilterRequiredException" in result.stderr


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"sortBy": "name"}, "InvalidSortByException"),
        ({"sortOrder": "sideways"}, "InvalidSortOrderException"),
        ({"deployed": "sometimes"}, "InvalidDeployedStateFilterException"),
    ],
)
def test_list_refuses_bad_sorting_and_filters(cd, app, arguments, expected):
    code, message = refusal(cd.list_application_revisions, applicationName=app, **arguments)
    assert code == expected
    assert list(arguments.values())[0] in message


def test_list_of_an_unknown_application(cd):
    code, _ = refusal(cd.list_application_revisions, applicationName="nope")
    assert code == "ApplicationDoesNotExistException"


def test_list_sorted_by_register_time(cd, app):
    for name in ("b.zip", "c.zip", "a.zip"):
        cd.register_application_revision(applicationName=app, revision=s3(key=name))
        time.sleep(0.01)
    assert keys(listed(cd, app, sortBy="registerTime")) == ["b.zip", "c.zip", "a.zip"]
    assert keys(listed(cd, app, sortBy="registerTime", sortOrder="ascending")) == ["b.zip", "c.zip", "a.zip"]
    assert keys(listed(cd, app, sortBy="registerTime", sortOrder="descending")) == ["a.zip", "c.zip", "b.zip"]


def test_list_pages_past_one_page(server, cd, app):
    names = [f"build-{i:03d}.zip" for i in range(130)]
    for name in names:
        cd.register_application_revision(applicationName=app, revision=s3(key=name))
    first = cd.list_application_revisions(applicationName=app)
    assert len(first["revisions"]) == 100 and first["nextToken"]
    everything = keys(listed(cd, app))
    assert sorted(everything) == names and len(everything) == 130
    result = server.aws("deploy", "list-application-revisions", "--application-name", app)
    assert result.ok, result.stderr
    assert sorted(keys(result.json["revisions"])) == names
    code, _ = refusal(cd.list_application_revisions, applicationName=app, nextToken="garbage")
    assert code == "InvalidNextTokenException"


# -- revisions used by deployments ------------------------------------------------------------


@pytest.fixture
def group(cd, app):
    """A group with one registered host: its deployments stay InProgress (no agent runs here) until
    stopped, so the group is free again only after a stop."""
    cd.register_on_premises_instance(instanceName="web-1", iamUserArn="arn:aws:iam::123456789012:user/web-1")
    cd.add_tags_to_on_premises_instances(instanceNames=["web-1"], tags=[{"Key": "env", "Value": "prod"}])
    cd.create_deployment_group(applicationName=app, deploymentGroupName="fleet", serviceRoleArn=ROLE,
                               onPremisesInstanceTagFilters=[{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}])
    return "fleet"


def deploy(cd, app, group, revision):
    deployment_id = cd.create_deployment(applicationName=app, deploymentGroupName=group, revision=revision)["deploymentId"]
    assert cd.stop_deployment(deploymentId=deployment_id)["status"] == "Succeeded"
    assert cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Stopped"
    return deployment_id


def test_create_deployment_registers_its_revision(server, cd, app, group):
    before = time.time()
    result = server.aws("deploy", "create-deployment", "--application-name", app, "--deployment-group-name", group,
                        "--s3-location", "bucket=bundles,key=app/v1.zip,bundleType=zip")
    assert result.ok, result.stderr
    deployment_id = result.json["deploymentId"]
    info = cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]
    assert info["description"] == f"Application revision registered by Deployment ID: {deployment_id}"
    assert before - 1 <= info["registerTime"].timestamp() <= time.time() + 1
    assert info["firstUsedTime"] == info["lastUsedTime"]
    assert info["firstUsedTime"] >= info["registerTime"]
    assert listed(cd, app) == [s3()]


def test_deploying_a_registered_revision_keeps_its_description_and_tracks_use(cd, app, group):
    cd.register_application_revision(applicationName=app, revision=s3(), description="release 1")
    registered = cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]
    deploy(cd, app, group, s3())
    first = cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]
    assert first["description"] == "release 1"
    assert first["registerTime"] == registered["registerTime"]
    assert first["firstUsedTime"] >= registered["registerTime"]
    time.sleep(0.01)
    deploy(cd, app, group, s3())
    second = cd.get_application_revision(applicationName=app, revision=s3())["revisionInfo"]
    assert second["firstUsedTime"] == first["firstUsedTime"]
    assert second["lastUsedTime"] > first["lastUsedTime"]


def test_list_sorted_by_first_and_last_use(cd, app, group):
    a, b = s3(key="a.zip"), s3(key="b.zip")
    for revision in (a, b, a):
        deploy(cd, app, group, revision)
        time.sleep(0.01)
    assert keys(listed(cd, app, sortBy="firstUsedTime")) == ["a.zip", "b.zip"]
    assert keys(listed(cd, app, sortBy="firstUsedTime", sortOrder="descending")) == ["b.zip", "a.zip"]
    assert keys(listed(cd, app, sortBy="lastUsedTime")) == ["b.zip", "a.zip"]
    assert keys(listed(cd, app, sortBy="lastUsedTime", sortOrder="descending")) == ["a.zip", "b.zip"]


def test_deployed_filter_follows_target_revisions(cd, app, group):
    cd.register_application_revision(applicationName=app, revision=s3(key="a.zip"))
    deploy(cd, app, group, s3(key="b.zip"))
    # No deployment has succeeded, so no revision is any group's target revision yet.
    assert listed(cd, app, deployed="include") == []
    assert sorted(keys(listed(cd, app, deployed="exclude"))) == ["a.zip", "b.zip"]
    assert sorted(keys(listed(cd, app, deployed="ignore"))) == ["a.zip", "b.zip"]


def test_refused_deployment_registers_nothing(cd, app, group):
    active = cd.create_deployment(applicationName=app, deploymentGroupName=group, revision=s3(key="a.zip"))
    code, _ = refusal(cd.create_deployment, applicationName=app, deploymentGroupName=group, revision=s3(key="b.zip"))
    assert code == "DeploymentLimitExceededException"
    assert keys(listed(cd, app)) == ["a.zip"]
    code, _ = refusal(cd.create_deployment, applicationName=app, deploymentGroupName="no-such-group",
                      revision=s3(key="c.zip"))
    assert code == "DeploymentGroupDoesNotExistException"
    assert keys(listed(cd, app)) == ["a.zip"]
    cd.stop_deployment(deploymentId=active["deploymentId"])
