"""What the traffic tests share: a small HTTP app that says its version, bundles whose hooks
run it, a load generator, and `landfall router` in front of the hosts (its built-in proxy, or a
real HAProxy it drives)."""

import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

from conftest import LANDFALL_BIN
from hostsim import wait_for
from realhost import bundle
from sources import free_port

SERVICE_ROLE = "arn:aws:iam::123456789012:role/landfall"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

APP = """import http.server, sys
port, version, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{version} {host}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

STOP = """#!/bin/sh
# Stop this host's app, if it runs, and wait until its port is free.
if [ -f "$APP_DIR/app.pid" ]; then
  kill "$(cat "$APP_DIR/app.pid")" 2>/dev/null
  rm -f "$APP_DIR/app.pid"
fi
for i in $(seq 50); do
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $APP_PORT)) == 0)" && exit 0
  sleep 0.1
done
exit 1
"""

START = """#!/bin/sh
mkdir -p "$APP_DIR"
setsid python3 "$(dirname "$0")/app.py" "$APP_PORT" "{version}" "$TEST_HOST" > "$APP_DIR/app.log" 2>&1 < /dev/null &
echo $! > "$APP_DIR/app.pid"
"""

VALIDATE = """#!/bin/sh
for i in $(seq 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$APP_PORT/health', timeout=1)" && exit 0
  sleep 0.1
done
echo "the app did not answer on port $APP_PORT" >&2
exit 1
"""


def revision(workdir, version, start=True):
    """A bundle whose hooks stop the app, start this version (unless `start` is false: a broken
    release), and check it answers."""
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n"
        "  ApplicationStop:\n    - location: stop.sh\n"
        "  ApplicationStart:\n    - location: start.sh\n"
        + ("  ValidateService:\n    - location: validate.sh\n" if start else "")
    )
    files = {
        "appspec.yml": (appspec, 0o644),
        "app.py": (APP, 0o644),
        "stop.sh": (STOP, 0o755),
        "start.sh": (START.format(version=version) if start else "#!/bin/sh\nexit 0\n", 0o755),
        "validate.sh": (VALIDATE, 0o755),
    }
    return bundle(workdir / f"{version}.tgz", files)


class Load:
    """Sends GET requests through the router back to back, from its own thread, recording
    (time, status, body) of each."""

    def __init__(self, url):
        self.url = url
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    self.results.append((time.time(), response.status, response.read().decode().strip()))
            except urllib.error.HTTPError as error:
                self.results.append((time.time(), error.code, error.read().decode().strip()))
            except OSError as error:
                self.results.append((time.time(), 0, str(error)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=15)

    def wait_until_running(self, answers=20):
        """Waits until `answers` requests have been answered."""
        wait_for(lambda: len(self.results) >= answers, timeout=30, message=f"{answers} answers through the router")

    def wait_for_hosts(self, prefix, hosts, timeout=30):
        """Waits until each of `hosts` has answered with `prefix` (`v2 web-1`: release, host)."""
        def answered():
            seen = {body.split()[1] for _, _, body in list(self.results) if body.startswith(prefix)}
            return set(hosts) <= seen
        wait_for(answered, timeout=timeout, message=f"{sorted(hosts)} to answer {prefix!r}")

    def wait_for_answer(self, prefix, timeout=30):
        """Waits until the latest answer starts with `prefix` (the release now serving)."""
        wait_for(lambda: self.results and self.results[-1][2].startswith(prefix), timeout=timeout,
                 message=f"an answer starting {prefix!r}")


HAPROXY_CONFIG = """global
    stats socket {socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend web
    bind 127.0.0.1:{port}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /health
"""



class Router:
    """`landfall router` serving target group `group`: its built-in proxy listening on `url`, or
    a real HAProxy there that it drives through the runtime API."""

    def __init__(self, server, kind, tmp_path, group="web"):
        self.kind = kind
        self.log = tmp_path / "router.log"
        self._log = open(self.log, "w")
        self._haproxy = None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        key = server.landfall("keys", "create", "--role", "router", "--output", "json").json["accessKey"]
        env = {**server._clean_env(), "AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": key["accessKeyId"],
               "AWS_SECRET_ACCESS_KEY": key["secretAccessKey"], "LANDFALL_LOG": "info,landfall_router=debug"}
        if kind == "builtin":
            where = ["--listen", f"127.0.0.1:{port}"]
        else:
            self._socket = tmp_path / "haproxy.sock"
            self._config = tmp_path / "haproxy.cfg"
            self._config.write_text(HAPROXY_CONFIG.format(socket=self._socket, port=port))
            self._start_haproxy()
            where = ["--haproxy-socket", str(self._socket), "--haproxy-backend", "web"]
        self._router = subprocess.Popen([LANDFALL_BIN, "router", "--target-group", group, *where],
                                        stdout=self._log, stderr=self._log, env=env)

    def _start_haproxy(self):
        self._socket.unlink(missing_ok=True)
        self._haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(self._config)], stdout=self._log,
                                         stderr=self._log)
        wait_for_path(self._socket)

    def restart_haproxy(self):
        self._haproxy.terminate()
        self._haproxy.wait(timeout=10)
        self._start_haproxy()

    def tail(self, size=3000):
        return self.log.read_text()[-size:]

    def close(self):
        self._router.terminate()
        self._router.wait(timeout=10)
        if self._haproxy:
            self._haproxy.terminate()
            self._haproxy.wait(timeout=10)
        self._log.close()


def create_target_group(server, name="web", router="builtin"):
    created = server.landfall("target-group", "create", name, "--router", router,
                              "--health-path", "/health", "--interval", "1",
                              "--healthy-threshold", "2", "--unhealthy-threshold", "2",
                              "--deregistration-delay", "2")
    assert created.ok, created.stderr


def stop_apps(tmp_path, names):
    """Stops the apps the hooks started."""
    for name in names:
        pid_file = tmp_path / "apps" / name / "app.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], capture_output=True)


def wait_for_path(path, timeout=10):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def failures(cd, deployment_id):
    """The failed lifecycle events of a deployment, for assertion messages."""
    found = []
    for target_id in cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]:
        target = cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
        for event in target["instanceTarget"]["lifecycleEvents"]:
            if event["status"] == "Failed":
                found.append((target_id, event["lifecycleEventName"], event.get("diagnostics", {}).get("message")))
    return found


def upload(server, path, key):
    assert server.aws("s3", "cp", str(path), f"s3://bundles/{key}").ok
    return {"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": key, "bundleType": "tgz"}}
