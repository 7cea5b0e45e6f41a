"""Traffic control: an in-place deployment WITH_TRAFFIC_CONTROL over four real hosts, each running
a small HTTP app that says its version, behind `landfall router` (its built-in proxy, or a real
HAProxy it drives), while a load generator sends requests the whole time."""

import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import LANDFALL_BIN
from hostsim import wait_for_status
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


@pytest.fixture
def server(landfall_factory):
    """A server that gives up on a host's health checks after 8 s (the default is 300 s)."""
    return landfall_factory(start=False).start("--traffic-timeout", "8")


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


@pytest.fixture(params=["builtin", "haproxy"])
def traffic(request, server, hosts, tmp_path):
    """Four hosts in group app/web (in-place, with traffic control, one at a time), each a
    target of target group `web`, served by `landfall router`: its built-in proxy, or a real
    HAProxy it drives."""
    names = [f"web-{i}" for i in range(4)]
    ports = {}
    for name in names:
        ports[name] = free_port()
        hosts(name, start=False, role="web").start(
            TEST_HOST=name, APP_PORT=str(ports[name]), APP_DIR=str(tmp_path / "apps" / name))
    created = server.landfall("target-group", "create", "web", "--router", request.param,
                              "--health-path", "/health", "--interval", "1",
                              "--healthy-threshold", "2", "--unhealthy-threshold", "2",
                              "--deregistration-delay", "2")
    assert created.ok, created.stderr
    for name in names:
        registered = server.landfall("target-group", "register", "web", name, f"127.0.0.1:{ports[name]}")
        assert registered.ok, registered.stderr
    key = server.landfall("keys", "create", "--role", "router", "--output", "json").json["accessKey"]
    router_port = free_port()
    env = {**server._clean_env(), "AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": key["accessKeyId"],
           "AWS_SECRET_ACCESS_KEY": key["secretAccessKey"], "LANDFALL_LOG": "info,landfall_router=debug"}
    log = open(tmp_path / "router.log", "w")
    haproxy = {}
    if request.param == "builtin":
        where = ["--listen", f"127.0.0.1:{router_port}"]
    else:
        socket_path = tmp_path / "haproxy.sock"
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(socket=socket_path, port=router_port))
        def start_haproxy():
            socket_path.unlink(missing_ok=True)
            haproxy["process"] = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=log)
            wait_for_path(socket_path)

        def restart_haproxy():
            haproxy["process"].terminate()
            haproxy["process"].wait(timeout=10)
            start_haproxy()

        start_haproxy()
        haproxy["restart"] = restart_haproxy
        where = ["--haproxy-socket", str(socket_path), "--haproxy-backend", "web"]
    router = subprocess.Popen([LANDFALL_BIN, "router", "--target-group", "web", *where],
                              stdout=log, stderr=log, env=env)
    cd = server.client()
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="web", serviceRoleArn=SERVICE_ROLE,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    assert server.aws("s3", "mb", "s3://bundles").ok
    yield {"names": names, "url": f"http://127.0.0.1:{router_port}/", "cd": cd, "log": tmp_path / "router.log",
           "kind": request.param, "restart_haproxy": haproxy.get("restart")}
    router.terminate()
    router.wait(timeout=10)
    if "process" in haproxy:
        haproxy["process"].terminate()
        haproxy["process"].wait(timeout=10)
    log.close()
    # The apps the hooks started.
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


def deploy(server, cd, path, key):
    assert server.aws("s3", "cp", str(path), f"s3://bundles/{key}").ok
    deployment_id = cd.create_deployment(
        applicationName="app", deploymentGroupName="web",
        revision={"revisionType": "S3", "s3Location": {"bucket": "bundles", "key": key, "bundleType": "tgz"}},
    )["deploymentId"]
    return deployment_id, wait_for_status(cd, deployment_id, timeout=180)


def test_in_place_behind_the_router_drops_no_request(server, traffic, tmp_path):
    cd = traffic["cd"]
    # v1 everywhere: no app ran before, so every host enters rotation only once it answers.
    first, info = deploy(server, cd, revision(tmp_path, "v1"), "v1.tgz")
    assert info["status"] == "Succeeded", (failures(cd, first), traffic["log"].read_text()[-3000:])
    target = cd.get_deployment_target(deploymentId=first, targetId="web-0")["deploymentTarget"]["instanceTarget"]
    events = [e["lifecycleEventName"] for e in target["lifecycleEvents"]]
    assert events[:3] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert events[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    allow = target["lifecycleEvents"][-2]
    assert allow["status"] == "Succeeded" and "healthy in target groups web" in allow["diagnostics"]["message"]
    with urllib.request.urlopen(traffic["url"], timeout=5) as response:
        assert response.read().decode().startswith("v1 ")
    if traffic["kind"] == "builtin":
        # HTTP/2 (cleartext, prior knowledge) is served too.
        h2 = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_version}", traffic["url"]],
                            capture_output=True, text=True, timeout=10)
        assert h2.stdout.startswith("v1 ") and h2.stdout.endswith("\n2"), (h2.stdout, h2.stderr)

    # v2 one host at a time, under load the whole time.
    with Load(traffic["url"]) as load:
        time.sleep(1)
        second, info = deploy(server, cd, revision(tmp_path, "v2"), "v2.tgz")
        time.sleep(1)
    assert info["status"] == "Succeeded", info
    failed = [r for r in load.results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(load.results)} requests failed: {failed[:5]}"
    assert len(load.results) > 50, "the load ran through the deployment"
    # Each host switched once, from v1 to v2, in the deployment's order.
    first_v2 = {}
    for when, _, body in load.results:
        version, host = body.split()
        if version == "v2":
            first_v2.setdefault(host, when)
        else:
            assert host not in first_v2, f"{host} answered v1 after v2"
    assert sorted(first_v2, key=first_v2.get) == traffic["names"]
    assert load.results[-1][2].startswith("v2 ")

    if traffic["kind"] == "haproxy":
        # HAProxy restarted (dynamic servers are lost): the router puts every server back, and
        # each takes traffic again once its checks pass.
        traffic["restart_haproxy"]()
        deadline = time.time() + 20
        seen = set()
        while len(seen) < 4:
            assert time.time() < deadline, f"only {seen} answered after HAProxy restarted"
            try:
                with urllib.request.urlopen(traffic["url"], timeout=5) as response:
                    seen.add(response.read().decode().split()[1])
            except OSError:
                time.sleep(0.2)

    # A release whose app never starts: AllowTraffic fails on the first host with the health
    # check's reason, the deployment fails, and the other hosts keep serving v2.
    with Load(traffic["url"]) as load:
        broken, info = deploy(server, cd, revision(tmp_path, "v3", start=False), "v3.tgz")
    assert info["status"] == "Failed", (info["status"], traffic["log"].read_text()[-4000:])
    target = cd.get_deployment_target(deploymentId=broken, targetId="web-0")["deploymentTarget"]["instanceTarget"]
    allow = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
    assert allow["status"] == "Failed"
    message = allow["diagnostics"]["message"]
    assert "web-0" in message and "did not pass the health check of target group web" in message, message
    assert "GET /health" in message and "unhealthy" in message, message
    assert not [r for r in load.results if r[1] != 200], "the failed host had been drained first"


def test_target_group_commands_and_errors(server, tmp_path):
    listed = server.landfall("target-group", "list", "--output", "json")
    assert listed.ok and listed.json == []
    bad = server.landfall("target-group", "create", "web", "--health-path", "health")
    assert bad.returncode == 2 and "must start with '/'" in bad.stderr, bad.stderr
    assert server.landfall("target-group", "create", "web").ok
    again = server.landfall("target-group", "create", "web")
    assert again.returncode == 1 and "TargetGroupAlreadyExistsException" in again.stderr
    unknown = server.landfall("target-group", "register", "web", "nobody", "127.0.0.1:9")
    assert unknown.returncode == 2 and "InstanceNotRegisteredException" in unknown.stderr, unknown.stderr
    # A deployer key reads target groups but does not change them; a router key does neither.
    deployer = server.landfall("keys", "create", "--role", "deployer", "--output", "json").json["accessKey"]
    env = {"AWS_ACCESS_KEY_ID": deployer["accessKeyId"], "AWS_SECRET_ACCESS_KEY": deployer["secretAccessKey"],
           "AWS_PROFILE": ""}
    assert server.landfall("target-group", "list", env=env).ok
    denied = server.landfall("target-group", "delete", "web", env=env)
    assert denied.returncode == 1 and "AccessDeniedException" in denied.stderr, denied.stderr
    # The group says which kind of router serves it.
    mismatch = server.landfall("router", "--target-group", "web", "--haproxy-socket", str(tmp_path / "none.sock"),
                               "--haproxy-backend", "web")
    assert mismatch.returncode == 1 and "is served by a builtin router, not haproxy" in mismatch.stderr, mismatch.stderr
    assert server.landfall("target-group", "delete", "web").ok
    gone = server.landfall("target-group", "delete", "web")
    assert "TargetGroupDoesNotExistException" in gone.stderr
