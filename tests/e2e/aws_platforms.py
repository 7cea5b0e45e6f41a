"""A local AWS-API implementation for the Lambda and ECS platform tests: `moto_server` (installed
by scripts/test into the test venv), started on a free port of 127.0.0.1 with its own dummy
credentials, and boto3 clients of it for the tests' own setup and observations."""

import base64
import json
import os
import pathlib
import subprocess
import sys
import urllib.request

import boto3

from sources import free_port, wait_until_listening

MOTO_SERVER = str(pathlib.Path(sys.executable).parent / "moto_server")


class Moto:
    ACCESS_KEY = "MOTOPLATFORMKEY"
    SECRET_KEY = "moto-platform-secret"
    REGION = "us-east-1"

    def __init__(self, workdir):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = pathlib.Path(workdir) / "moto.log"
        log = open(self.log_path, "a")
        # The recorder writes to a file of its own (by default one in the working directory,
        # which parallel tests would share).
        env = {**os.environ, "AWS_DEFAULT_REGION": self.REGION,
               "MOTO_RECORDER_FILEPATH": str(pathlib.Path(workdir) / "moto-recording")}
        self.process = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                        stderr=log, env=env)
        log.close()
        wait_until_listening(self.port, self.process, self.log_path, "moto_server")

    def api(self, path, body=None):
        """A call to moto's own API (/moto-api/...)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read()

    def lambdas_without_docker(self):
        """Lambda functions that answer invocations without running (there is no Docker here);
        before any function is created, since it switches moto to another Lambda backend."""
        self.api("/moto-api/config", {"lambda": {"use_docker": False}})

    def start_recording(self):
        self.api("/moto-api/recorder/reset-recording", {})
        self.api("/moto-api/recorder/start-recording", {})

    def requests(self):
        """Every request moto received since recording started, oldest first: its method, URL,
        headers and body (text)."""
        recording = self.api("/moto-api/recorder/download-recording").decode()
        # moto appends each entry and then its newline while serving other requests: a last line
        # without its newline may still be half written, and is read again on the next call.
        complete = recording[:recording.rfind("\n") + 1]
        found = []
        for line in complete.splitlines():
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            found.append({**entry, "body": body})
        return found

    def invocations(self, function):
        """The payloads `function` was invoked with so far, oldest first."""
        return [json.loads(entry["body"]) for entry in self.requests()
                if entry["method"] == "POST" and f"/functions/{function}/invocations" in entry["url"]]

    def client(self, service):
        return boto3.session.Session(aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY,
                                     region_name=self.REGION).client(service, endpoint_url=self.endpoint)

    def server_env(self):
        """What `landfall server` needs to drive these APIs."""
        return {"LANDFALL_AWS_ENDPOINT_URL": self.endpoint, "LANDFALL_AWS_REGION": self.REGION,
                "LANDFALL_AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "LANDFALL_AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
