"""End-to-end test harness: real `landfall server` processes driven by the real aws CLI and boto3.

Every test gets its own server (own data directory, a free port chosen by the kernel), so tests run
in parallel and in any order. Every boto3 client made here checks each raw answer against the
botocore model: a field the output shape lacks, a value of the wrong type or outside its enum, or an
error the operation does not model, fails the test at teardown.
"""

import configparser
import contextlib
import datetime
import http.cookiejar
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.auth
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from aws_platforms import Moto

REPO = pathlib.Path(__file__).resolve().parents[2]
# Where tests leave figures for the end-of-run summary (workers and the controller share it).
REPORT_DIR = REPO / "target" / "e2e-report"
LANDFALL_BIN = os.environ.get("LANDFALL_BIN") or str(REPO / "target" / "debug" / "landfall")

# Errors the AWS JSON protocol layer sends for any operation; no operation's model lists them.
PROTOCOL_ERRORS = {
    "AccessDeniedException",
    "IncompleteSignatureException",
    "InternalFailure",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "RequestEntityTooLargeException",
    "RequestTimeoutException",
    "SerializationException",
    "ServiceUnavailableException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ThrottlingException",
}
# Values AWS documents in answers although the model's enum omits them.
EXTRA_ENUM_VALUES = {"MinimumHealthyHostsType": {"MOST_CONCURRENCY"}}


class ModelChecker:
    """Checks every answer a boto3 client receives against the operation's botocore model."""

    def __init__(self):
        self.problems = []
        self.answered = set()

    def attach(self, client):
        client.meta.events.register("after-call.codedeploy", self._after_call)

    def _after_call(self, http_response, parsed, model, **_):
        raw = http_response.content
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.problems.append(f"{model.name}: answer is not JSON: {raw[:200]!r}")
            return
        if http_response.status_code >= 300:
            code = body.get("__type", "")
            modeled = {shape.name for shape in model.error_shapes}
            if code not in modeled and code not in PROTOCOL_ERRORS:
                self.problems.append(f"{model.name} answered {code}, which its model does not list")
            if not body.get("message"):
                self.problems.append(f"{model.name} answered {code} without a message")
            return
        self.answered.add(model.name)
        if model.output_shape is None:
            if body not in ({}, None):
                self.problems.append(f"{model.name} has no output but answered {body!r}")
            return
        self.check(body, model.output_shape, model.name)

    def check(self, value, shape, path):
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                self.problems.append(f"{path}: expected an object, got {value!r}")
                return
            for key, member in value.items():
                if key not in shape.members:
                    self.problems.append(f"{path}.{key}: not a member of {shape.name}")
                else:
                    self.check(member, shape.members[key], f"{path}.{key}")
        elif kind == "list":
            if not isinstance(value, list):
                self.problems.append(f"{path}: expected a list, got {value!r}")
                return
            for index, item in enumerate(value):
                self.check(item, shape.member, f"{path}[{index}]")
        elif kind == "map":
            if not isinstance(value, dict):
                self.problems.append(f"{path}: expected a map, got {value!r}")
                return
            for key, item in value.items():
                self.check(key, shape.key, f"{path}<key>")
                self.check(item, shape.value, f"{path}.{key}")
        elif kind == "string":
            if not isinstance(value, str):
                self.problems.append(f"{path}: expected a string, got {value!r}")
            elif shape.enum and value not in shape.enum and value not in EXTRA_ENUM_VALUES.get(shape.name, ()):
                self.problems.append(f"{path}: {value!r} is not a value of {shape.name}")
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                self.problems.append(f"{path}: expected an integer, got {value!r}")
        elif kind in ("double", "float", "timestamp"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.problems.append(f"{path}: expected a number, got {value!r}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.problems.append(f"{path}: expected a boolean, got {value!r}")


class CliResult:
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}

    @property
    def ok(self):
        return self.returncode == 0


class Landfall:
    """One `landfall server` process on its own data directory."""

    def __init__(self, workdir, checker):
        self.workdir = pathlib.Path(workdir)
        self.data_dir = self.workdir / "data"
        self.home = self.workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.checker = checker
        self.process = None
        self.lines = {}

    # -- process ----------------------------------------------------------------------------
    def start(self, *extra_args, listen="127.0.0.1:0", env=None, open_files=None):
        """Starts the server; `listen` may name the port of an earlier run (a restart), `env`
        adds environment variables, `open_files` sets its descriptor limit (soft and hard)."""
        self.extra_args = extra_args
        self.extra_env = env or {}
        log = open(self.log_path, "a")

        def limit_open_files():
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.process = subprocess.Popen(
            [LANDFALL_BIN, "server", "--data-dir", str(self.data_dir), "--listen", listen, *extra_args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**self._clean_env(), "LANDFALL_LOG": "debug", **self.extra_env},
            preexec_fn=limit_open_files,
        )
        log.close()
        self.lines = {}
        while len(self.lines) < 3:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"landfall server exited early:\n{self.log()}")
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                self.lines[name] = value
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process is None:
            return None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.process.stdout.close()
        self.process = None
        return code

    def restart(self, sig=signal.SIGTERM):
        """Stops the server (SIGKILL for a crash) and starts it again on the same address."""
        address = self.endpoint.split("://", 1)[1]
        self.stop(sig)
        return self.start(*self.extra_args, listen=address, env=self.extra_env)

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    # -- clients ----------------------------------------------------------------------------
    @property
    def endpoint(self):
        return self.lines["AWS_ENDPOINT_URL"]

    @property
    def credentials_file(self):
        return pathlib.Path(self.lines["AWS_SHARED_CREDENTIALS_FILE"])

    def admin_key(self):
        parser = configparser.ConfigParser()
        parser.read(self.credentials_file)
        section = parser[self.lines["AWS_PROFILE"]]
        return section["aws_access_key_id"], section["aws_secret_access_key"], section.get("region", "us-east-1")

    def _clean_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["HOME"] = str(self.home)
        return env

    def env(self):
        """The environment a user gets by pasting the three lines the server printed."""
        return {**self._clean_env(), **self.lines}

    def client(self, access_key_id=None, secret_access_key=None, region=None):
        default_id, default_secret, default_region = self.admin_key()
        session = boto3.session.Session(
            aws_access_key_id=access_key_id or default_id,
            aws_secret_access_key=secret_access_key or default_secret,
            region_name=region or default_region,
        )
        client = session.client(
            "codedeploy", endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 1, "mode": "standard"})
        )
        self.checker.attach(client)
        return client

    def aws(self, *args, env=None):
        """Runs the aws CLI (`aws deploy ...`) as a user would, with the server's environment."""
        completed = subprocess.run(
            ["aws", *args, "--output", "json"],
            capture_output=True,
            text=True,
            env={**self.env(), **(env or {})},
            timeout=120,
        )
        return CliResult(completed)

    def console_page(self, path):
        """A console page's HTML as the administrator sees it (signed in, with the session cookie)."""
        key_id, secret, _ = self.admin_key()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"access_key_id": key_id, "secret_access_key": secret}).encode()
        login = urllib.request.Request(self.endpoint + "/console/login", data=form, method="POST",
                                       headers={"Origin": self.endpoint})
        opener.open(login, timeout=10).close()
        with opener.open(self.endpoint + path, timeout=10) as page:
            return page.read().decode()

    def landfall(self, *args, env=None):
        """Runs a `landfall` client subcommand with the server's environment."""
        completed = subprocess.run(
            [LANDFALL_BIN, *args], capture_output=True, text=True, env={**self.env(), **(env or {})}, timeout=60
        )
        return CliResult(completed)

    def gauge(self, name):
        """A gauge's value on /metrics (with the metrics token from the data directory)."""
        token = (self.data_dir / "metrics-token").read_text().strip()
        request = urllib.request.Request(self.endpoint + "/metrics", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"no gauge {name} on /metrics")

    def agent_polled(self, name, timeout=30):
        """Waits until instance `name`'s agent has polled (its first poll nudges the fleet)."""
        def seen():
            status, body = self.raw("Landfall_20261122.ListAgentStatus", {})
            assert status == 200, body
            return any(agent["instanceName"] == name for agent in body["agents"])
        deadline = time.monotonic() + timeout
        while not seen():
            assert time.monotonic() < deadline, f"the agent of {name} never polled"
            time.sleep(0.1)

    def fleet_settled(self, timeout=30):
        """Waits until the server has looked at its deployment groups since every nudge so far
        (a host registered, retagged or polling for the first time, a deployment's end): after
        it, whatever the fleet was going to start for those changes has started. A fact to
        wait on instead of sleeping to show that nothing happened."""
        nudges = self.gauge("landfall_fleet_nudges")
        deadline = time.monotonic() + timeout
        while self.gauge("landfall_fleet_looked_after_nudges") < nudges:
            assert time.monotonic() < deadline, "the fleet never looked at the groups"
            time.sleep(0.1)

    def raw(self, target, body, *, key=None, sign=True, service="codedeploy", region=None, headers=None, when=None):
        """Sends one hand-made request, signed with botocore's own signer unless `sign` is false.
        Returns (HTTP status, parsed JSON body or raw text)."""
        access_key_id, secret, default_region = self.admin_key()
        if key is not None:
            access_key_id, secret = key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        request = AWSRequest(
            method="POST",
            url=self.endpoint + "/",
            data=body,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(headers or {})},
        )
        if sign:
            with signing_time(when):
                botocore.auth.SigV4Auth(Credentials(access_key_id, secret), service, region or default_region).add_auth(
                    request
                )
        prepared = request.prepare()
        http_request = urllib.request.Request(
            prepared.url, data=prepared.body, headers=dict(prepared.headers.items()), method="POST"
        )
        try:
            with urllib.request.urlopen(http_request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        try:
            return status, json.loads(payload) if payload else {}
        except ValueError:
            return status, payload.decode(errors="replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Lets a test see a redirect instead of following it."""

    def redirect_request(self, *args, **kwargs):
        return None


@contextlib.contextmanager
def signing_time(when):
    """Makes botocore's signer sign as of `when` (a datetime in UTC), or now."""
    if when is None:
        yield
        return
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: when.replace(tzinfo=None)
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def checker():
    return ModelChecker()


@pytest.fixture
def landfall_factory(tmp_path, checker):
    """Makes servers on demand (for tests that need more than one, or a restart)."""
    servers = []

    def make(name="server", start=True):
        server = Landfall(tmp_path / name, checker)
        servers.append(server)
        return server.start() if start else server

    yield make
    logs = []
    for server in servers:
        if server.process is not None:
            server.stop()
        logs.append(server.log())
    panics = [line for log in logs for line in log.splitlines() if "panicked" in line]
    assert not panics, "the server panicked:\n" + "\n".join(panics)
    assert not checker.problems, "answers that do not fit the botocore model:\n" + "\n".join(checker.problems)


@pytest.fixture
def server(landfall_factory):
    return landfall_factory()


@pytest.fixture
def cd(server):
    """A boto3 CodeDeploy client with the administrator key."""
    return server.client()


def self_signed_certificate(directory):
    """A certificate for 127.0.0.1 and its key (PEM files in `directory`)."""
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(certificate),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return certificate, key


def ca_issued_certificate(directory):
    """A test CA and a certificate for 127.0.0.1 it issued, with its key: (CA, certificate, key).
    Clients built on rustls want this, not a self-signed certificate as the server's own."""
    ca_key, ca_cert = directory / "ca-key.pem", directory / "ca.pem"
    server_key, request, server_cert = directory / "server-key.pem", directory / "server.csr", directory / "server.pem"
    extensions = directory / "ext.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert, "-days", "1",
         "-subj", "/CN=Landfall test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", server_key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", server_cert,
         "-days", "1", "-extfile", extensions],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca_cert, server_cert, server_key


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def refusal(call, **kwargs):
    """Calls a boto3 method that must fail; returns (exception name, message)."""
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(**kwargs)
    message = excinfo.value.response["Error"]["Message"]
    assert message, "an AWS error always carries a message"
    return error_code(excinfo), message


def refused(code, call, **kwargs):
    """Calls a boto3 method that must fail with `code`; returns the message."""
    found, message = refusal(call, **kwargs)
    assert found == code, (found, message)
    return message


def cli_refused(result, code):
    """An aws CLI run that must fail with `code`."""
    assert not result.ok, result.stdout
    assert code in result.stderr, result.stderr


@pytest.fixture
def hosts(server):
    """Makes real hosts (registered instances running `landfall agent`); stops them at the end."""
    from realhost import Host

    made = []

    def make(name, start=True, **tags):
        host = Host(server, name, tags or {"role": "web"})
        made.append(host)
        return host.start() if start else host

    yield make
    for host in made:
        code = host.stop()
        log = host.log()
        assert "panicked" not in log, log
        assert code in (None, 0), f"the agent exited with {code}:\n{log}"


@pytest.fixture
def hosts_of():
    """Real hosts of a server the test makes itself (`hosts` is for the `server` fixture's)."""
    from realhost import Host

    made = []

    def make(server, name):
        host = Host(server, name, {"role": "web"})
        made.append(host)
        return host

    yield make
    for host in made:
        assert host.stop() in (None, 0), host.log()


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="landfall-e2e-")
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller, not an xdist worker
        shutil.rmtree(REPORT_DIR, ignore_errors=True)
        REPORT_DIR.mkdir(parents=True, exist_ok=True)


def pytest_terminal_summary(terminalreporter):
    for report in sorted(REPORT_DIR.glob("*.txt")) if REPORT_DIR.exists() else []:
        terminalreporter.write_line(report.read_text().strip())


@pytest.fixture
def moto(tmp_path):
    """A local AWS API (moto) whose Lambda functions answer without running, recording requests."""
    made = Moto(tmp_path)
    made.lambdas_without_docker()
    made.start_recording()
    yield made
    made.stop()
