"""Bad input of every kind gets the AWS exception and a message naming what is wrong, and leaves
nothing behind."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

CREATE_APP = "CodeDeploy_20141006.CreateApplication"
ROLE = "arn:aws:iam::123456789012:role/cd"


def no_applications(cd):
    return cd.list_applications()["applications"] == []


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"applicationName": "a"} trailing', b"[]", b'"a string"'])
def test_malformed_json_is_a_serialization_error(server, cd, body):
    status, answer = server.raw(CREATE_APP, body)
    assert (status, answer["__type"]) == (400, "SerializationException"), answer
    assert answer["message"]
    assert no_applications(cd)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"applicationName": 42}, "applicationName"),
        ({"applicationName": ["a"]}, "applicationName"),
        ({"applicationName": "a", "tags": {"Key": "k"}}, "tags"),
        ({"applicationName": "a", "tags": [{"Key": 1, "Value": "v"}]}, "tags[0].Key"),
    ],
)
def test_wrong_types_name_the_field(server, cd, body, field):
    status, answer = server.raw(CREATE_APP, body)
    assert answer["__type"] == "SerializationException"
    assert field in answer["message"], answer["message"]
    assert no_applications(cd)


def test_wrong_type_deep_in_a_deployment_group(server, cd):
    cd.create_application(applicationName="web")
    status, answer = server.raw(
        "CodeDeploy_20141006.CreateDeploymentGroup",
        {"applicationName": "web", "deploymentGroupName": "g", "serviceRoleArn": ROLE,
         "blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"waitTimeInMinutes": "ten"}}},
    )
    assert answer["__type"] == "SerializationException"
    assert "blueGreenDeploymentConfiguration.deploymentReadyOption.waitTimeInMinutes" in answer["message"]
    assert cd.list_deployment_groups(applicationName="web")["deploymentGroups"] == []


def test_oversized_body_is_refused(server, cd):
    body = b'{"applicationName": "big", "padding": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    status, answer = server.raw(CREATE_APP, body)
    assert (status, answer["__type"]) == (413, "RequestEntityTooLargeException")
    assert "bytes" in answer["message"]
    assert no_applications(cd)


@pytest.mark.parametrize("name", ["has space", "slash/inside", "ümlaut", "a" * 101, "semi;colon"])
def test_illegal_application_names(server, cd, name):
    with pytest.raises(ClientError) as excinfo:
        cd.create_application(applicationName=name)
    assert error_code(excinfo) == "InvalidApplicationNameException"
    assert "applicationName" in excinfo.value.response["Error"]["Message"]
    assert no_applications(cd)


def test_illegal_names_through_the_aws_cli(server):
    result = server.aws("deploy", "create-application", "--application-name", "bad name")
    assert not result.ok
    assert "InvalidApplicationNameException" in result.stderr and "' '" in result.stderr
    result = server.aws("deploy", "create-deployment-group", "--application-name", "nope",
                        "--deployment-group-name", "g/1", "--service-role-arn", ROLE)
    assert "InvalidDeploymentGroupNameException" in result.stderr


def test_over_long_descriptions(server, cd):
    cd.create_application(applicationName="web")
    revision = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"}}
    with pytest.raises(ClientError) as excinfo:
        cd.register_application_revision(applicationName="web", revision=revision, description="d" * 257)
    assert error_code(excinfo) == "DescriptionTooLongException"
    assert "256" in excinfo.value.response["Error"]["Message"]
    assert cd.list_application_revisions(applicationName="web")["revisions"] == []
    cd.register_application_revision(applicationName="web", revision=revision, description="d" * 256)


def test_limit_breaches(server, cd):
    with pytest.raises(ClientError) as excinfo:
        cd.batch_get_applications(applicationNames=[f"a{i}" for i in range(101)])
    assert error_code(excinfo) == "BatchLimitExceededException"
    assert "100" in excinfo.value.response["Error"]["Message"]
    cd.create_application(applicationName="web")
    alarms = [{"name": f"alarm-{i}"} for i in range(11)]
    with pytest.raises(ClientError) as excinfo:
        cd.create_deployment_group(applicationName="web", deploymentGroupName="g", serviceRoleArn=ROLE,
                                   alarmConfiguration={"enabled": True, "alarms": alarms})
    assert error_code(excinfo) == "AlarmsLimitExceededException"
    assert cd.list_deployment_groups(applicationName="web")["deploymentGroups"] == []


def test_unknown_enum_values_name_the_allowed_ones(server, cd):
    with pytest.raises(ClientError) as excinfo:
        cd.create_application(applicationName="web", computePlatform="Mainframe")
    assert error_code(excinfo) == "InvalidComputePlatformException"
    message = excinfo.value.response["Error"]["Message"]
    assert "Mainframe" in message and "Server" in message and "ECS" in message
    assert no_applications(cd)


def test_missing_required_fields(server, cd):
    # botocore refuses to send a request without its required fields, so these go by hand.
    status, answer = server.raw("CodeDeploy_20141006.CreateDeploymentGroup", {"applicationName": "web"})
    assert answer["__type"] == "DeploymentGroupNameRequiredException"
    assert "deploymentGroupName" in answer["message"]
    status, answer = server.raw("CodeDeploy_20141006.GetApplication", {})
    assert answer["__type"] == "ApplicationNameRequiredException"


def test_a_failed_request_does_not_disturb_existing_records(server, cd):
    cd.create_application(applicationName="web", tags=[{"Key": "team", "Value": "core"}])
    before = cd.get_application(applicationName="web")["application"]
    with pytest.raises(ClientError):
        cd.create_application(applicationName="web", tags=[{"Key": "aws:reserved", "Value": "x"}])
    with pytest.raises(ClientError):
        cd.update_application(applicationName="web", newApplicationName="bad name")
    assert cd.get_application(applicationName="web")["application"] == before
    assert cd.list_applications()["applications"] == ["web"]
