"""On-premises instances: registration with an IAM user or session, reads, listing with filters and
pages, instance tags, and deregistration, through boto3 and the aws CLI."""

import re
import time

import pytest

from conftest import refusal

ACCOUNT = "123456789012"


def user_arn(name):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def session_arn(name):
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeDeployHosts/{name}"


def register(cd, name, **arns):
    if not arns:
        arns = {"iamUserArn": user_arn(name)}
    cd.register_on_premises_instance(instanceName=name, **arns)


def instance(cd, name):
    return cd.get_on_premises_instance(instanceName=name)["instanceInfo"]


def tags_of(cd, name):
    return sorted((tag["Key"], tag["Value"]) for tag in instance(cd, name)["tags"])


def all_names(cd, **filters):
    names, token = [], None
    while True:
        page = cd.list_on_premises_instances(**filters, **({"nextToken": token} if token else {}))
        names += page["instanceNames"]
        token = page.get("nextToken")
        if not token:
            return names


# -- registration ---------------------------------------------------------------------------


def test_register_with_an_iam_user_through_the_cli(server, cd):
    before = time.time()
    result = server.aws("deploy", "register-on-premises-instance", "--instance-name", "web-1",
                        "--iam-user-arn", user_arn("web-1"))
    assert result.ok, result.stderr
    shown = server.aws("deploy", "get-on-premises-instance", "--instance-name", "web-1")
    assert shown.ok, shown.stderr
    info = shown.json["instanceInfo"]
    assert info["instanceName"] == "web-1"
    assert info["iamUserArn"] == user_arn("web-1")
    assert "iamSessionArn" not in info and "deregisterTime" not in info
    assert re.fullmatch(r"arn:aws:codedeploy:us-east-1:\d{12}:instance/web-1_[A-Za-z0-9]{10}", info["instanceArn"])
    assert before - 1 <= info["registerTime"] <= time.time() + 1
    assert info["tags"] == []


def test_register_with_an_iam_session(cd):
    register(cd, "db-1", iamSessionArn=session_arn("db-1"))
    info = instance(cd, "db-1")
    assert info["iamSessionArn"] == session_arn("db-1")
    assert "iamUserArn" not in info
    assert re.fullmatch(r"arn:aws:codedeploy:us-east-1:\d{12}:instance/db-1_[A-Za-z0-9]{10}", info["instanceArn"])


def test_each_instance_gets_its_own_arn(cd):
    for name in ("a", "b"):
        register(cd, name)
    arns = {instance(cd, name)["instanceArn"] for name in ("a", "b")}
    assert len(arns) == 2
    # The account in the instance ARN is the server's, the same for every instance.
    assert len({arn.split(":")[4] for arn in arns}) == 1


BAD_IDENTITIES = [
    ({"iamUserArn": user_arn("h"), "iamSessionArn": session_arn("h")}, "MultipleIamArnsProvidedException"),
    ({}, "IamArnRequiredException"),
    ({"iamUserArn": "arn:aws:iam::12345:user/h"}, "InvalidIamUserArnException"),
    ({"iamUserArn": f"arn:aws:iam::{ACCOUNT}:role/h"}, "InvalidIamUserArnException"),
    ({"iamUserArn": f"arn:aws:sts::{ACCOUNT}:user/h"}, "InvalidIamUserArnException"),
    ({"iamUserArn": f"arn:aws:iam::{ACCOUNT}:user/"}, "InvalidIamUserArnException"),
    ({"iamUserArn": "not-an-arn"}, "InvalidIamUserArnException"),
    ({"iamSessionArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/OnlyTheRole"}, "InvalidIamSessionArnException"),
    ({"iamSessionArn": f"arn:aws:iam::{ACCOUNT}:assumed-role/Role/h"}, "InvalidIamSessionArnException"),
    ({"iamSessionArn": user_arn("h")}, "InvalidIamSessionArnException"),
]


def test_register_refuses_bad_identities_and_keeps_nothing(cd):
    for arns, expected in BAD_IDENTITIES:
        code, _ = refusal(cd.register_on_premises_instance, instanceName="h", **arns)
        assert code == expected, arns
    assert cd.list_on_premises_instances()["instanceNames"] == []


def test_register_refuses_bad_names(cd):
    for name in ["i-0123456789abcdef0", "has space", "slash/name", "star*", "x" * 101]:
        code, _ = refusal(cd.register_on_premises_instance, instanceName=name, iamUserArn=user_arn("h"))
        assert code == "InvalidInstanceNameException", name
    assert cd.list_on_premises_instances()["instanceNames"] == []
    # None of the refused calls took the identity.
    register(cd, "h", iamUserArn=user_arn("h"))


def test_longest_name_and_every_allowed_character_are_accepted(cd):
    names = ["n" * 100, "A.z_0-9+=,@x"]
    for index, name in enumerate(names):
        register(cd, name, iamUserArn=user_arn(f"host{index}"))
    assert sorted(cd.list_on_premises_instances()["instanceNames"]) == sorted(names)


def test_register_without_a_name_is_refused(server):
    status, body = server.raw("CodeDeploy_20141006.RegisterOnPremisesInstance", {"iamUserArn": user_arn("h")})
    assert (status, body["__type"]) == (400, "InstanceNameRequiredException")


def test_name_already_registered(server, cd):
    register(cd, "web-1")
    original = instance(cd, "web-1")
    result = server.aws("deploy", "register-on-premises-instance", "--instance-name", "web-1",
                        "--iam-user-arn", user_arn("other"))
    assert not result.ok
    assert "InstanceNameAlreadyRegisteredException" in result.stderr
    assert instance(cd, "web-1") == original
    # The other identity was not taken by the refused call.
    register(cd, "web-2", iamUserArn=user_arn("other"))


@pytest.mark.parametrize(
    "field, arn, expected",
    [
        ("iamUserArn", user_arn("shared"), "IamUserArnAlreadyRegisteredException"),
        ("iamSessionArn", session_arn("shared"), "IamSessionArnAlreadyRegisteredException"),
    ],
)
def test_iam_identity_already_registered(cd, field, arn, expected):
    register(cd, "first", **{field: arn})
    code, message = refusal(cd.register_on_premises_instance, instanceName="second", **{field: arn})
    assert code == expected
    assert arn in message
    assert cd.list_on_premises_instances()["instanceNames"] == ["first"]
    code, _ = refusal(cd.get_on_premises_instance, instanceName="second")
    assert code == "InstanceNotRegisteredException"


# -- reads ----------------------------------------------------------------------------------


def test_get_unknown_instance(server, cd):
    code, message = refusal(cd.get_on_premises_instance, instanceName="ghost")
    assert code == "InstanceNotRegisteredException"
    assert "ghost" in message


def test_batch_get_omits_unknown_names_and_shows_deregistered_ones(server, cd):
    for name in ("a", "b", "c"):
        register(cd, name)
    cd.deregister_on_premises_instance(instanceName="c")
    result = server.aws("deploy", "batch-get-on-premises-instances", "--instance-names", "a", "nope", "c")
    assert result.ok, result.stderr
    infos = {info["instanceName"]: info for info in result.json["instanceInfos"]}
    assert set(infos) == {"a", "c"}
    assert "deregisterTime" not in infos["a"]
    assert "deregisterTime" in infos["c"]
    assert infos["a"]["iamUserArn"] == user_arn("a")


def test_batch_get_limit(cd):
    register(cd, "a")
    assert len(cd.batch_get_on_premises_instances(instanceNames=["a"] + [f"n{i}" for i in range(99)])["instanceInfos"]) == 1
    code, _ = refusal(cd.batch_get_on_premises_instances, instanceNames=[f"n{i}" for i in range(101)])
    assert code == "BatchLimitExceededException"


# -- listing --------------------------------------------------------------------------------


def test_list_by_registration_status(server, cd):
    for name in ("up-1", "up-2", "gone"):
        register(cd, name)
    cd.deregister_on_premises_instance(instanceName="gone")
    assert sorted(cd.list_on_premises_instances()["instanceNames"]) == ["gone", "up-1", "up-2"]
    registered = server.aws("deploy", "list-on-premises-instances", "--registration-status", "Registered")
    assert registered.ok, registered.stderr
    assert sorted(registered.json["instanceNames"]) == ["up-1", "up-2"]
    deregistered = cd.list_on_premises_instances(registrationStatus="Deregistered")
    assert deregistered["instanceNames"] == ["gone"]


def test_list_with_a_bad_registration_status(server, cd):
    code, message = refusal(cd.list_on_premises_instances, registrationStatus="Pending")
    assert code == "InvalidRegistrationStatusException"
    assert "Pending" in message


def test_list_tag_filters_are_or_with_each_filter_type(server, cd):
    tagged = {
        "prod-web": [("env", "prod"), ("role", "web")],
        "test-web": [("env", "test"), ("role", "web")],
        "prod-db": [("env", "prod"), ("role", "db")],
        "owner-only": [("owner", "")],
        "untagged": [],
        "value-prod": [("stage", "prod")],
    }
    for name, tags in tagged.items():
        register(cd, name)
        if tags:
            cd.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags])

    def listed(*filters):
        return sorted(cd.list_on_premises_instances(tagFilters=list(filters))["instanceNames"])

    key_and_value = {"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}
    assert listed(key_and_value) == ["prod-db", "prod-web"]
    assert listed({"Key": "owner", "Type": "KEY_ONLY"}) == ["owner-only"]
    assert listed({"Value": "prod", "Type": "VALUE_ONLY"}) == ["prod-db", "prod-web", "value-prod"]
    # Several filters: an instance matching any of them is listed.
    assert listed(key_and_value, {"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}) == [
        "prod-db", "prod-web", "test-web"]
    assert listed({"Key": "env", "Value": "staging", "Type": "KEY_AND_VALUE"}) == []
    # The aws CLI's shorthand, with the status filter on top.
    cd.deregister_on_premises_instance(instanceName="prod-db")
    result = server.aws("deploy", "list-on-premises-instances", "--registration-status", "Registered",
                        "--tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")
    assert result.ok, result.stderr
    assert result.json["instanceNames"] == ["prod-web"]


def test_list_with_a_bad_tag_filter(cd):
    register(cd, "a")
    for bad in ({"Key": "env", "Value": "x", "Type": "SOMETIMES"}, {"Value": "x", "Type": "KEY_ONLY"}):
        code, _ = refusal(cd.list_on_premises_instances, tagFilters=[bad])
        assert code == "InvalidTagFilterException"


def test_list_pages_past_100(server, cd):
    names = sorted(f"host-{index:03d}" for index in range(205))
    for name in names:
        register(cd, name)
    first = cd.list_on_premises_instances()
    assert len(first["instanceNames"]) == 100
    assert first["nextToken"]
    assert all_names(cd) == names
    # The aws CLI follows the pages itself.
    result = server.aws("deploy", "list-on-premises-instances")
    assert result.ok, result.stderr
    assert sorted(result.json["instanceNames"]) == names
    code, _ = refusal(cd.list_on_premises_instances, nextToken="bm90LWEtdG9rZW4")
    assert code == "InvalidNextTokenException"


# -- tags -----------------------------------------------------------------------------------


def test_add_tags_through_the_cli_and_overwrite_values(server, cd):
    for name in ("a", "b"):
        register(cd, name)
    result = server.aws("deploy", "add-tags-to-on-premises-instances", "--instance-names", "a", "b",
                        "--tags", "Key=env,Value=test", "Key=role,Value=web")
    assert result.ok, result.stderr
    cd.add_tags_to_on_premises_instances(instanceNames=["a"], tags=[{"Key": "env", "Value": "prod"}])
    assert tags_of(cd, "a") == [("env", "prod"), ("role", "web")]
    assert tags_of(cd, "b") == [("env", "test"), ("role", "web")]


def test_remove_tags_removes_matching_pairs_only(server, cd):
    register(cd, "a")
    cd.add_tags_to_on_premises_instances(
        instanceNames=["a"], tags=[{"Key": k, "Value": v} for k, v in [("env", "prod"), ("role", "web"), ("x", "1")]])
    result = server.aws("deploy", "remove-tags-from-on-premises-instances", "--instance-names", "a",
                        "--tags", "Key=env,Value=prod", "Key=role,Value=db")
    assert result.ok, result.stderr
    # role=web stays: only the pair role=db was named.
    assert tags_of(cd, "a") == [("role", "web"), ("x", "1")]


def test_tag_limit_changes_no_instance(cd):
    register(cd, "few")
    register(cd, "many")
    cd.add_tags_to_on_premises_instances(instanceNames=["few"], tags=[{"Key": "k0", "Value": "v"}])
    cd.add_tags_to_on_premises_instances(instanceNames=["many"], tags=[{"Key": f"k{i}", "Value": "v"} for i in range(9)])
    code, message = refusal(cd.add_tags_to_on_premises_instances, instanceNames=["few", "many"],
                            tags=[{"Key": "new1", "Value": "v"}, {"Key": "new2", "Value": "v"}])
    assert code == "TagLimitExceededException"
    assert tags_of(cd, "few") == [("k0", "v")]
    assert len(tags_of(cd, "many")) == 9
    # Overwriting existing keys does not count against the limit; ten tags are allowed.
    cd.add_tags_to_on_premises_instances(instanceNames=["many"], tags=[{"Key": "k0", "Value": "w"},
                                                                       {"Key": "new1", "Value": "v"}])
    assert len(tags_of(cd, "many")) == 10
    code, _ = refusal(cd.add_tags_to_on_premises_instances, instanceNames=["many"], tags=[{"Key": "k11", "Value": "v"}])
    assert code == "TagLimitExceededException"
    code, _ = refusal(cd.add_tags_to_on_premises_instances, instanceNames=["few"],
                      tags=[{"Key": f"t{i}", "Value": "v"} for i in range(11)])
    assert code == "TagLimitExceededException"
    assert tags_of(cd, "few") == [("k0", "v")]


@pytest.mark.parametrize("operation", ["add_tags_to_on_premises_instances", "remove_tags_from_on_premises_instances"])
def test_tag_calls_naming_an_unregistered_instance_change_nothing(cd, operation):
    register(cd, "here")
    register(cd, "gone")
    cd.add_tags_to_on_premises_instances(instanceNames=["here", "gone"], tags=[{"Key": "env", "Value": "prod"}])
    cd.deregister_on_premises_instance(instanceName="gone")
    for missing in ("ghost", "gone"):
        code, message = refusal(getattr(cd, operation), instanceNames=["here", missing],
                                tags=[{"Key": "env", "Value": "prod"}, {"Key": "new", "Value": "v"}])
        assert code == "InstanceNotRegisteredException"
        assert missing in message
    assert tags_of(cd, "here") == [("env", "prod")]
    assert tags_of(cd, "gone") == [("env", "prod")]


@pytest.mark.parametrize("operation", ["add_tags_to_on_premises_instances", "remove_tags_from_on_premises_instances"])
def test_tag_calls_need_tags_and_well_formed_ones(cd, operation):
    register(cd, "a")
    cd.add_tags_to_on_premises_instances(instanceNames=["a"], tags=[{"Key": "env", "Value": "prod"}])
    code, _ = refusal(getattr(cd, operation), instanceNames=["a"], tags=[])
    assert code == "TagRequiredException"
    code, _ = refusal(getattr(cd, operation), instanceNames=["a"], tags=[{"Key": "", "Value": "prod"}])
    assert code == "InvalidTagException"
    code, _ = refusal(getattr(cd, operation), instanceNames=["a"], tags=[{"Key": "k" * 129, "Value": "v"}])
    assert code == "InvalidTagException"
    code, _ = refusal(getattr(cd, operation), instanceNames=[], tags=[{"Key": "env", "Value": "prod"}])
    assert code == "InstanceNameRequiredException"
    assert tags_of(cd, "a") == [("env", "prod")]


def test_tag_calls_name_at_most_100_instances(cd):
    register(cd, "a")
    code, _ = refusal(cd.add_tags_to_on_premises_instances, instanceNames=["a"] * 101,
                      tags=[{"Key": "env", "Value": "prod"}])
    assert code == "InstanceLimitExceededException"
    assert tags_of(cd, "a") == []


# -- deregistration -------------------------------------------------------------------------


def test_deregister_keeps_the_record_and_frees_name_and_identity(server, cd):
    register(cd, "web-1")
    cd.add_tags_to_on_premises_instances(instanceNames=["web-1"], tags=[{"Key": "env", "Value": "prod"}])
    before = instance(cd, "web-1")
    result = server.aws("deploy", "deregister-on-premises-instance", "--instance-name", "web-1")
    assert result.ok, result.stderr

    after = instance(cd, "web-1")
    assert after["deregisterTime"] >= after["registerTime"]
    assert after["tags"] == [{"Key": "env", "Value": "prod"}]
    assert after["iamUserArn"] == before["iamUserArn"]
    assert after["instanceArn"] == before["instanceArn"]
    # Deregistering again changes nothing.
    cd.deregister_on_premises_instance(instanceName="web-1")
    assert instance(cd, "web-1")["deregisterTime"] == after["deregisterTime"]

    # The IAM identity is free for another host...
    register(cd, "web-2", iamUserArn=user_arn("web-1"))
    # ...and the name for a new registration, which starts afresh.
    register(cd, "web-1", iamUserArn=user_arn("web-1-new"))
    fresh = instance(cd, "web-1")
    assert "deregisterTime" not in fresh
    assert fresh["iamUserArn"] == user_arn("web-1-new")
    assert fresh["tags"] == []
    assert fresh["instanceArn"] != before["instanceArn"]
    assert sorted(cd.list_on_premises_instances(registrationStatus="Registered")["instanceNames"]) == ["web-1", "web-2"]


def test_deregistered_session_identity_can_be_reused(cd):
    register(cd, "a", iamSessionArn=session_arn("host"))
    cd.deregister_on_premises_instance(instanceName="a")
    register(cd, "b", iamSessionArn=session_arn("host"))
    assert instance(cd, "b")["iamSessionArn"] == session_arn("host")


def test_deregister_unknown_instance_succeeds_and_bad_name_is_refused(cd):
    cd.deregister_on_premises_instance(instanceName="never-registered")
    assert cd.list_on_premises_instances()["instanceNames"] == []
    code, _ = refusal(cd.deregister_on_premises_instance, instanceName="i-0abc")
    assert code == "InvalidInstanceNameException"
