"""`landfall dev`: the first five minutes, as the README promises them."""

import os
import re
import signal
import subprocess
import urllib.request

from conftest import LANDFALL_BIN, Landfall


def read_until(process, pattern, limit=200):
    lines = []
    for _ in range(limit):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError("never printed /%s/:\n%s" % (pattern, "".join(lines)))


def start_dev(tmp_path):
    stderr = open(tmp_path / "dev-stderr", "a")
    process = subprocess.Popen(
        [LANDFALL_BIN, "dev", "--data-dir", str(tmp_path / "dev"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=stderr, text=True,
    )
    stderr.close()
    return process


def test_dev_runs_three_hosts_and_deploys_the_example(tmp_path, checker):
    process = start_dev(tmp_path)
    try:
        lines = read_until(process, r"Ctrl-C stops it")
        text = "".join(lines)
        assert lines[0].startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:")
        # A fourth line puts `landfall` on the PATH, for the commands the README suggests.
        assert lines[3] == f'export PATH="{os.path.dirname(LANDFALL_BIN)}:$PATH"\n', lines[3]
        # Its own progress on the terminal; the server's log in a file.
        assert f"# logs: {tmp_path / 'dev' / 'landfall.log'}" in text
        assert "INFO" not in (tmp_path / "dev-stderr").read_text()
        assert "landfall_server" in (tmp_path / "dev" / "landfall.log").read_text()
        assert "3 local hosts, each with its own agent: dev-1, dev-2, dev-3" in text
        deployment_id = re.search(r"deploying hello-landfall as (d-[A-Z0-9]{9})", text).group(1)
        assert re.search(rf"{deployment_id} Succeeded in .*\(3 hosts: 3 succeeded\)", text), text
        # The live view showed every host's events, one host at a time.
        for host in ("dev-1", "dev-2", "dev-3"):
            assert re.search(rf"{host}\s+ValidateService\s+Succeeded", text), text
        sites = re.findall(r"#\s+(dev-\d): (http://127\.0\.0\.1:\d+/)", text)
        assert [name for name, _ in sites] == ["dev-1", "dev-2", "dev-3"]
        for _, url in sites:
            page = urllib.request.urlopen(url, timeout=5).read().decode()
            assert deployment_id in page
        # The router in front of them: each host left its rotation while it was redeployed.
        router = re.search(r"# the example behind landfall router \(target group hello-landfall\): (http://\S+)", text)
        assert router, text
        assert deployment_id in urllib.request.urlopen(router.group(1), timeout=5).read().decode()
        for host in ("dev-1", "dev-2", "dev-3"):
            assert re.search(rf"{host}\s+BlockTraffic\s+Succeeded", text), text
            assert re.search(rf"{host}\s+AllowTraffic\s+Succeeded", text), text

        # The environment lines are all the aws CLI needs.
        server = Landfall(tmp_path / "client", checker)
        server.lines = dict(line[len("export "):].strip().split("=", 1) for line in lines[:3])
        shown = server.aws("deploy", "get-deployment", "--deployment-id", deployment_id)
        assert shown.ok, shown.stderr
        assert shown.json["deploymentInfo"]["status"] == "Succeeded"
        assert shown.json["deploymentInfo"]["deploymentOverview"]["Succeeded"] == 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    # Stopping dev stops the example's web servers too.
    for _, url in sites:
        try:
            urllib.request.urlopen(url, timeout=2)
            raise AssertionError(f"{url} still answers after landfall dev stopped")
        except OSError:
            pass
    # Started again, the router and the hosts keep their URLs.
    process = start_dev(tmp_path)
    try:
        again = "".join(read_until(process, r"Ctrl-C stops it"))
        assert f"(target group hello-landfall): {router.group(1)}" in again, again
        assert re.findall(r"#\s+(dev-\d): (http://127\.0\.0\.1:\d+/)", again) == sites, again
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
