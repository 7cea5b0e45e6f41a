"""A local AWS-API implementation for the Lambda and ECS platform tests: `moto_server` (installed
by scripts/test into the test venv), started on a free port of 127.0.0.1 with its own dummy
credentials, and boto3 clients of it for the tests' own setup and observations."""

import os
import pathlib
import socket
import subprocess
import sys
import time

import boto3

from sources import free_port

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
        self.process = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                        stderr=log, env={**os.environ, "AWS_DEFAULT_REGION": self.REGION})
        log.close()
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"moto_server did not start:\n{self.log_path.read_text()}")
                time.sleep(0.1)

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
