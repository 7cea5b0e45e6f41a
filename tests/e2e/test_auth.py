"""Authentication and authorisation: SigV4 as AWS checks it, and the roles of access keys."""

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, utcnow

LIST = "CodeDeploy_20141006.ListApplications"


def test_unsigned_request_is_refused(server):
    status, body = server.raw(LIST, {}, sign=False)
    assert (status, body["__type"]) == (400, "MissingAuthenticationTokenException")


def test_unknown_key_is_refused(server):
    status, body = server.raw(LIST, {}, key=("AKLFNOSUCHKEY0000000", "whatever"))
    assert body["__type"] == "UnrecognizedClientException"
    assert body["message"] == "The security token included in the request is invalid."


def test_wrong_secret_is_refused(server):
    access_key_id, _, _ = server.admin_key()
    status, body = server.raw(LIST, {}, key=(access_key_id, "not-the-secret"))
    assert body["__type"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in body["message"]


def test_tampered_body_is_refused(server):
    """A body changed after signing no longer matches its signature."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import urllib.request, urllib.error

    access_key_id, secret, region = server.admin_key()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=b"{}",
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": LIST})
    SigV4Auth(Credentials(access_key_id, secret), "codedeploy", region).add_auth(request)
    prepared = request.prepare()
    http_request = urllib.request.Request(prepared.url, data=b'{"nextToken":"x"}', headers=dict(prepared.headers.items()), method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(http_request, timeout=10)
    assert json.loads(excinfo.value.read())["__type"] == "InvalidSignatureException"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew_over_15_minutes_is_refused(server, minutes):
    status, body = server.raw(LIST, {}, when=utcnow() + datetime.timedelta(minutes=minutes))
    assert body["__type"] == "InvalidSignatureException"
    assert ("expired" if minutes < 0 else "not yet current") in body["message"]


@pytest.mark.parametrize("minutes", [-14, 14])
def test_clock_skew_within_15_minutes_is_accepted(server, minutes):
    status, body = server.raw(LIST, {}, when=utcnow() + datetime.timedelta(minutes=minutes))
    assert status == 200, body


def test_malformed_authorization_header_is_refused(server):
    status, body = server.raw(LIST, {}, sign=False, headers={"Authorization": "AWS4-HMAC-SHA256 Signature=abc", "X-Amz-Date": "20260101T000000Z"})
    assert body["__type"] == "IncompleteSignatureException"
    assert "Credential" in body["message"]


def test_request_signed_for_another_service_is_refused(server):
    status, body = server.raw(LIST, {}, service="s3")
    assert body["__type"] == "InvalidSignatureException"
    assert "codedeploy" in body["message"]


def test_any_region_in_the_scope_is_accepted(server):
    """Clients configured for another region still reach the one server."""
    status, body = server.raw(LIST, {}, region="eu-west-3")
    assert status == 200, body


def test_aws_cli_with_a_wrong_secret_fails_with_the_aws_error(server):
    access_key_id, _, _ = server.admin_key()
    result = server.aws("deploy", "list-applications",
                        env={"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert not result.ok
    assert "InvalidSignatureException" in result.stderr


def make_key(server, role):
    result = server.landfall("keys", "create", "--role", role, "--description", f"{role} key for tests")
    assert result.ok, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.strip().splitlines())
    return fields["access key id"].strip(), fields["secret access key"].strip()


def test_read_only_key_reads_but_cannot_change_anything(server, cd):
    cd.create_application(applicationName="existing")
    key = make_key(server, "read-only")
    reader = server.client(*key)
    assert reader.list_applications()["applications"] == ["existing"]
    assert reader.get_application(applicationName="existing")["application"]["applicationName"] == "existing"
    attempts = [
        lambda: reader.create_application(applicationName="new"),
        lambda: reader.delete_application(applicationName="existing"),
        lambda: reader.update_application(applicationName="existing", newApplicationName="renamed"),
        lambda: reader.create_deployment_config(deploymentConfigName="c", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}),
        lambda: reader.register_on_premises_instance(instanceName="h", iamUserArn="arn:aws:iam::123456789012:user/h"),
        lambda: reader.tag_resource(ResourceArn="arn:aws:codedeploy:us-east-1:123456789012:application:existing", Tags=[{"Key": "a", "Value": "b"}]),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as excinfo:
            attempt()
        assert error_code(excinfo) == "AccessDeniedException"
        assert key[0] in excinfo.value.response["Error"]["Message"]
    assert cd.list_applications()["applications"] == ["existing"]


def test_read_only_key_through_the_aws_cli(server):
    access_key_id, secret = make_key(server, "read-only")
    env = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret}
    assert server.aws("deploy", "list-applications", env=env).ok
    result = server.aws("deploy", "create-application", "--application-name", "x", env=env)
    assert not result.ok and "AccessDeniedException" in result.stderr


def test_deployer_manages_deployments_but_not_keys_or_instances(server, cd):
    key = make_key(server, "deployer")
    deployer = server.client(*key)
    deployer.create_application(applicationName="app")
    with pytest.raises(ClientError) as excinfo:
        deployer.register_on_premises_instance(instanceName="h", iamUserArn="arn:aws:iam::123456789012:user/h")
    assert error_code(excinfo) == "AccessDeniedException"
    result = server.landfall("keys", "create", "--role", "admin",
                             env={"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]})
    assert result.returncode == 1 and "AccessDeniedException" in result.stderr


def test_keys_list_and_revoke(server, cd):
    access_key_id, secret = make_key(server, "deployer")
    listing = server.landfall("keys", "list")
    assert listing.ok, listing.stderr
    assert access_key_id in listing.stdout and secret not in listing.stdout
    assert "deployer" in listing.stdout
    own = server.admin_key()
    assert server.client(access_key_id, secret).list_applications()["applications"] == []

    revoked = server.landfall("keys", "revoke", access_key_id)
    assert revoked.ok, revoked.stderr
    with pytest.raises(ClientError) as excinfo:
        server.client(access_key_id, secret).list_applications()
    assert error_code(excinfo) == "UnrecognizedClientException"
    assert "Revoked" in server.landfall("keys", "list").stdout

    # An administrator cannot lock itself out by revoking its own key.
    self_revoke = server.landfall("keys", "revoke", own[0])
    assert self_revoke.returncode != 0 and "CannotRevokeOwnKeyException" in self_revoke.stderr
    assert server.landfall("keys", "revoke", "AKLFDOESNOTEXIST0000").returncode == 2


def test_keys_create_rejects_unknown_roles(server):
    result = server.landfall("keys", "create", "--role", "root")
    assert result.returncode == 2
    assert "admin, deployer, read-only" in result.stderr


def test_secrets_never_reach_the_log(server, cd):
    access_key_id, secret = make_key(server, "read-only")
    server.client(access_key_id, secret).list_applications()
    server.raw(LIST, {}, key=(access_key_id, "a-wrong-secret"))
    admin_secret = server.admin_key()[1]
    server.stop()
    log = server.log()
    assert access_key_id in log  # the log does name keys...
    for value in (secret, admin_secret):  # ...but never their secrets
        assert value not in log


def test_credentials_file_is_private(server):
    mode = server.credentials_file.stat().st_mode & 0o777
    assert mode == 0o600
    assert (server.data_dir.stat().st_mode & 0o777) == 0o700
