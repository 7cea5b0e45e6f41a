"""The server's access to the AWS APIs that Lambda and ECS deployments drive, against a local
implementation of them (moto): configured endpoints and credentials, checked with
`landfall server --check-platforms`."""

import subprocess

import pytest

from aws_platforms import Moto
from conftest import LANDFALL_BIN


@pytest.fixture
def moto(tmp_path):
    made = Moto(tmp_path)
    yield made
    made.stop()


def check(tmp_path, env, *args):
    return subprocess.run([LANDFALL_BIN, "server", "--data-dir", str(tmp_path / "data"), "--check-platforms", *args],
                          capture_output=True, text=True, env=env)


def test_the_platform_apis_answer_with_the_configured_credentials(moto, tmp_path):
    checked = check(tmp_path, moto.server_env())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines == [f"{name} at {moto.endpoint}/ (us-east-1): ok" for name in ["Lambda", "ECS", "ELBv2"]], lines
    # The secret is never printed.
    assert moto.SECRET_KEY not in checked.stdout + checked.stderr
    # A server that assumes service roles needs STS too.
    assuming = check(tmp_path, moto.server_env(), "--aws-assume-service-role")
    assert assuming.returncode == 0, assuming.stdout + assuming.stderr
    assert assuming.stdout.splitlines()[3] == f"STS at {moto.endpoint}/ (us-east-1): ok"


def test_a_platform_api_that_does_not_answer_is_named(moto, tmp_path):
    env = moto.server_env()
    # ECS elsewhere (nothing listens there); the others still answer.
    checked = check(tmp_path, env, "--ecs-endpoint-url", "http://127.0.0.1:9")
    assert checked.returncode == 1
    lines = checked.stdout.splitlines()
    assert lines[0].endswith(": ok") and lines[2].endswith(": ok"), lines
    assert lines[1].startswith("ECS at http://127.0.0.1:9/ (us-east-1): Unreachable"), lines


def test_missing_or_half_credentials(moto, tmp_path):
    env = {k: v for k, v in moto.server_env().items() if not k.startswith("LANDFALL_AWS_ACCESS")}
    env.pop("LANDFALL_AWS_SECRET_ACCESS_KEY")
    checked = check(tmp_path, env)
    assert checked.returncode == 1
    assert all("NoCredentials" in line and "LANDFALL_AWS_ACCESS_KEY_ID" in line for line in checked.stdout.splitlines())
    half = check(tmp_path, {**env, "LANDFALL_AWS_ACCESS_KEY_ID": "AKIDONLY"})
    assert half.returncode == 2 and "go together" in half.stderr
    bad = check(tmp_path, moto.server_env(), "--lambda-endpoint-url", "ftp://example")
    assert bad.returncode == 2 and "--lambda-endpoint-url 'ftp://example' is not an http(s) URL" in bad.stderr
