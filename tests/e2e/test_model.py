"""The API against the botocore model as a whole: every operation is implemented, and answers of
every kind parse with botocore's own parser and fit the model."""

import botocore.session

from conftest import REPORT_DIR

MODEL = botocore.session.get_session().get_service_model("codedeploy")


def test_every_operation_is_implemented(server, checker):
    """Each of the model's operations answers an (empty) request with its own output or with an
    error its model lists: never UnknownOperation or an internal failure."""
    assert len(MODEL.operation_names) == 47
    implemented = []
    for name in MODEL.operation_names:
        status, body = server.raw(f"CodeDeploy_20141006.{name}", {})
        code = body.get("__type") if isinstance(body, dict) else None
        assert code not in ("UnknownOperationException", "InternalFailure"), f"{name}: {status} {body}"
        if code is not None:
            modeled = {shape.name for shape in MODEL.operation_model(name).error_shapes}
            assert code in modeled or code == "AccessDeniedException", f"{name} answered {code}, not in its model"
        implemented.append(name)
    summary = f"{len(implemented)} of {len(MODEL.operation_names)} CodeDeploy operations implemented"
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "operations.txt").write_text(summary + "\n")
    assert len(implemented) == 47


def test_unknown_operations_are_refused(server):
    status, body = server.raw("CodeDeploy_20141006.LaunchRockets", {})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "LaunchRockets" in body["message"]
    status, body = server.raw("DynamoDB_20120810.ListTables", {})
    assert body["__type"] == "UnknownOperationException"


def test_the_model_checker_catches_a_field_outside_the_shape(checker):
    """The checker the other tests rely on does fail on a wrong answer."""
    shape = MODEL.operation_model("GetApplication").output_shape
    checker.check({"application": {"applicationName": "a", "colour": "blue"}}, shape, "GetApplication")
    checker.check({"application": {"computePlatform": "Mainframe"}}, shape, "GetApplication")
    checker.check({"application": {"createTime": "yesterday"}}, shape, "GetApplication")
    problems, checker.problems = checker.problems, []
    assert len(problems) == 3, problems
