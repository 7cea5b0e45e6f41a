"""Simulated hosts that speak the agent protocol (CodeDeployCommandService_v20141006) to a real
server, the way an agent does: long-poll, read the specification, acknowledge, complete.

They run no scripts: each lifecycle event succeeds or fails as the test says, optionally after a
delay. That isolates the server and its engine from the host agent in tests, and makes fleets of
many hosts cheap.
"""

import json
import threading
import time
import urllib.error
import urllib.request

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PREFIX = "CodeDeployCommandService_v20141006"


def agent_call(endpoint, region, key, operation, body, timeout=60, headers=None):
    """One agent-protocol call signed with `key` (access key id, secret): (HTTP status, answer)."""
    access_key_id, secret = key
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{PREFIX}.{operation}",
                 **(headers or {})},
    )
    botocore.auth.SigV4Auth(Credentials(access_key_id, secret), "codedeploy-commands", region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def read_simple_yaml(path):
    """The on-premises file `landfall instance register` writes: `key: value` lines."""
    values = {}
    for line in path.read_text().splitlines():
        if ":" in line and not line.startswith("---"):
            key, _, value = line.partition(":")
            values[key.strip()] = value.strip()
    return values


class SimHost:
    def __init__(self, server, name, tags=(), workdir=None):
        self.server = server
        self.name = name
        config_dir = (workdir or server.workdir) / "hosts" / name
        args = ["instance", "register", name, "--agent-config-dir", str(config_dir)]
        for key, value in tags:
            args += ["--tag", f"{key}={value}"]
        result = server.landfall(*args)
        assert result.ok, result.stderr
        on_premises = read_simple_yaml(config_dir / "codedeploy.onpremises.yml")
        self.arn = on_premises["iam_user_arn"]
        self.key = (on_premises["aws_access_key_id"], on_premises["aws_secret_access_key"])
        self.region = on_premises["region"]
        # (event name) -> "fail", or a callable (command) -> outcome; default: succeed.
        self.outcomes = {}
        self.delay = 0.0
        self.log = []  # (time, event, outcome) of every command this host completed
        self._stop = threading.Event()
        self._thread = None

    # -- protocol ------------------------------------------------------------------------------
    def call(self, operation, body, key=None, timeout=60):
        return agent_call(self.server.endpoint, self.region, key or self.key, operation, body, timeout)

    def poll(self):
        status, body = self.call("PollHostCommand", {"HostIdentifier": self.arn})
        assert status == 200, body
        return body.get("HostCommand")

    def handle(self, command):
        """Runs one command as an agent would; returns the outcome it reported."""
        status, spec = self.call(
            "GetDeploymentSpecification",
            {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": self.arn},
        )
        assert status == 200, spec
        assert spec["DeploymentSpecification"]["GenericEnvelope"]["Format"] == "PKCS7/JSON"
        status, ack = self.call(
            "PutHostCommandAcknowledgement",
            {"HostCommandIdentifier": command["HostCommandIdentifier"],
             "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": False})}},
        )
        assert status == 200, ack
        if ack.get("CommandStatus") == "Succeeded":
            return "skipped"
        event = command["CommandName"]
        if self.delay:
            time.sleep(self.delay)
        outcome = self.outcomes.get(event, "succeed")
        if callable(outcome):
            outcome = outcome(command)
        if outcome == "hang":
            return "hang"
        if outcome == "fail":
            payload = {"error_code": 4, "script_name": f"scripts/{event}.sh",
                       "message": f"Script at specified location: scripts/{event}.sh failed with exit code 1",
                       "log": f"[stderr]{event} failed on {self.name}\n"}
            completion = "Failed"
        else:
            payload = {"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""}
            completion = "Succeeded"
        # Logged before reporting: once the server hears of the last event the deployment may end,
        # and a test may read this log at once.
        self.log.append((time.monotonic(), event, outcome))
        status, _ = self.call(
            "PutHostCommandComplete",
            {"HostCommandIdentifier": command["HostCommandIdentifier"], "CommandStatus": completion,
             "Diagnostics": {"Format": "JSON", "Payload": json.dumps(payload)}},
        )
        assert status == 200
        return outcome

    # -- as a background agent ----------------------------------------------------------------------
    def start(self):
        def loop():
            while not self._stop.is_set():
                try:
                    command = self.poll()
                except Exception:
                    if self._stop.is_set():
                        return
                    time.sleep(0.2)
                    continue
                if command:
                    try:
                        self.handle(command)
                    except Exception:
                        time.sleep(0.2)

        self._thread = threading.Thread(target=loop, daemon=True, name=f"sim-{self.name}")
        self._thread.start()
        return self

    def stop(self):
        """Stops polling. A long poll in flight ends when the server answers or goes away."""
        self._stop.set()


def wait_for(predicate, timeout=30, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def wait_for_status(cd, deployment_id, statuses=("Succeeded", "Failed", "Stopped"), timeout=60):
    def done():
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in statuses else None

    return wait_for(done, timeout=timeout, message=f"{deployment_id} to reach {statuses}")
