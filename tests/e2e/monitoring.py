"""What the alarm, trigger and metrics tests share: a backend whose error counter a test raises,
a real Prometheus (the Debian package) scraping it and the Landfall server, a webhook receiver
that checks signatures, and a small application revision whose hooks can be slowed down."""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from hostsim import wait_for
from realhost import bundle
from sources import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SERVICE_ROLE = "arn:aws:iam::123456789012:role/landfall"


class Backend:
    """An HTTP service exposing `test_errors_total` at /metrics, as an application would."""

    def __init__(self):
        self.errors = 0
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = (
                    "# HELP test_errors_total Requests that failed.\n# TYPE test_errors_total counter\n"
                    f"test_errors_total {backend.errors}\n"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Prometheus:
    """`prometheus` on 127.0.0.1, scraping every second, evaluating rules every second."""

    def __init__(self, workdir, port=None):
        self.dir = workdir / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, scrape, rules=""):
        """`scrape`: (job, address, path, bearer token file or None) tuples."""
        jobs = []
        for job, address, path, token_file in scrape:
            auth = f"    authorization:\n      credentials_file: {token_file}\n" if token_file else ""
            jobs.append(
                f"  - job_name: {job}\n    metrics_path: {path}\n{auth}"
                f"    static_configs:\n      - targets: ['{address}']\n"
            )
        rule_files = ""
        if rules:
            (self.dir / "rules.yml").write_text(rules)
            rule_files = f"rule_files:\n  - {self.dir / 'rules.yml'}\n"
        config = (
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"{rule_files}scrape_configs:\n" + "".join(jobs)
        )
        (self.dir / "prometheus.yml").write_text(config)
        log = open(self.dir / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=log, cwd=self.dir,
        )
        log.close()
        wait_for(lambda: self.get("/-/ready", raw=True), 60, message="Prometheus to be ready")
        return self

    def get(self, path, raw=False):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body = response.read()
                return body if raw else json.loads(body)
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def query(self, expression):
        """An instant query's samples: [(labels, value)]."""
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
        if not answer or answer.get("status") != "success":
            return []
        return [(series["metric"], float(series["value"][1])) for series in answer["data"]["result"]]

    def wait_up(self, job):
        wait_for(lambda: any(value == 1 for _, value in self.query(f'up{{job="{job}"}}')), 60,
                 message=f"Prometheus to scrape {job}")

    def log(self):
        path = self.dir / "prometheus.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class WebhookReceiver:
    """An HTTP endpoint for trigger deliveries: refuses the first `refuse` requests (503), then
    accepts, keeping every accepted notification after checking its signature with `secret`."""

    def __init__(self, secret, refuse=0):
        self.secret = secret.encode()
        self.refuse = refuse
        self.attempts = 0
        self.accepted = []
        self.bad_signatures = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with receiver.lock:
                    receiver.attempts += 1
                    if receiver.attempts <= receiver.refuse:
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if not receiver.signed(self.headers.get("X-Landfall-Signature", ""), body):
                        receiver.bad_signatures.append(body)
                    headers = {key.lower(): value for key, value in self.headers.items()}
                    receiver.accepted.append((headers, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/codedeploy"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def signed(self, header, body):
        """Checks `t=<seconds>,v1=<hex HMAC-SHA256("<t>.<body>")>`, within five minutes."""
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if "t" not in fields or "v1" not in fields or abs(time.time() - int(fields["t"])) > 300:
            return False
        expected = hmac.new(self.secret, f"{fields['t']}.{body}".encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields["v1"])

    def notifications(self):
        """(event header, SNS envelope, parsed message) of every accepted delivery, in order."""
        with self.lock:
            return [(headers.get("x-landfall-event"), envelope, json.loads(envelope["Message"]))
                    for headers, envelope in self.accepted]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def revision(workdir, version, *, slow_seconds=0):
    """A bundle writing `version` to $OUT_DIR/$TEST_HOST; its ApplicationStart takes
    `slow_seconds` (a deployment long enough for an alarm to catch it mid-way)."""
    start = f"#!/bin/sh\nsleep {slow_seconds}\necho {version} > \"$OUT_DIR/$TEST_HOST\"\n"
    appspec = (
        "version: 0.0\nos: linux\n"
        "hooks:\n  ApplicationStart:\n    - location: start.sh\n      timeout: 120\n"
    )
    return bundle(workdir / f"{version}-{os.getpid()}-{time.monotonic_ns()}.tgz",
                  {"appspec.yml": (appspec, 0o644), "start.sh": (start, 0o755)})


def setup_group(server, *, config="CodeDeployDefault.OneAtATime", tag="web", extra=()):
    """The application `shop` with group `web` selecting hosts tagged role=`tag`."""
    assert server.aws("s3", "mb", "s3://bundles").ok
    assert server.aws("deploy", "create-application", "--application-name", "shop").ok
    created = server.aws(
        "deploy", "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web",
        "--service-role-arn", SERVICE_ROLE, "--deployment-config-name", config,
        "--on-premises-instance-tag-filters", f"Key=role,Value={tag},Type=KEY_AND_VALUE", *extra,
    )
    assert created.ok, created.stderr


def deploy(server, path, *extra):
    key = path.name
    assert server.aws("s3", "cp", str(path), f"s3://bundles/{key}").ok
    result = server.aws("deploy", "create-deployment", "--application-name", "shop", "--deployment-group-name", "web",
                        "--s3-location", f"bucket=bundles,key={key},bundleType=tgz", *extra)
    assert result.ok, result.stderr
    return result.json["deploymentId"]
