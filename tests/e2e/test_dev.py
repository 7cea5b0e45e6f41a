"""`landfall dev`: the first five minutes."""

import subprocess

from conftest import LANDFALL_BIN, Landfall


def test_dev_serves_and_creates_the_example_application(tmp_path, checker):
    process = subprocess.Popen(
        [LANDFALL_BIN, "dev", "--data-dir", str(tmp_path / "dev"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:"), lines
        assert "hello-landfall" in lines[3], lines
        server = Landfall(tmp_path / "client", checker)
        server.lines = dict(line[len("export "):].strip().split("=", 1) for line in lines[:3])
        listed = server.aws("deploy", "list-deployment-groups", "--application-name", "hello-landfall")
        assert listed.ok, listed.stderr
        assert listed.json["deploymentGroups"] == ["local"]
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
    # A second start on the same directory keeps the example and does not fail on it.
    again = subprocess.Popen(
        [LANDFALL_BIN, "dev", "--data-dir", str(tmp_path / "dev"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        lines = [again.stdout.readline() for _ in range(4)]
        assert "hello-landfall" in lines[3], lines
    finally:
        again.terminate()
        assert again.wait(timeout=15) == 0
