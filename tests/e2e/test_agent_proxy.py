"""The agent through a forward proxy, as hosts that reach nothing directly run it: `:proxy_uri:`
in the official configuration, and the HTTP_PROXY / NO_PROXY environment, tested through a real
tinyproxy. Every call (the long polls, the bundle download, the reports) goes through the proxy,
and an agent whose proxy is down reaches nothing, though the server would answer it directly."""

import shutil
import subprocess

import pytest

from conftest import ca_issued_certificate
from hostsim import wait_for, wait_for_status
from realhost import Host
from sources import free_port, wait_until_listening
from test_agent import group_setup, revision, upload_and_deploy

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class Tinyproxy:
    def __init__(self, workdir):
        self.port = free_port()
        self.log_path = workdir / "tinyproxy.log"
        config = workdir / "tinyproxy.conf"
        config.write_text(
            f"Port {self.port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\nAllow 127.0.0.1\n"
            "LogLevel Connect\nDisableViaHeader Yes\n"
        )
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([TINYPROXY, "-d", "-c", str(config)], stdout=self.log, stderr=self.log)
        wait_until_listening(self.port, self.process, self.log_path, "tinyproxy")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def requests(self):
        """The requests it forwarded: (method, URL)."""
        lines = self.log_path.read_text().splitlines()
        return [tuple(line.split("): ", 1)[1].split()[:2]) for line in lines if "Request (file descriptor" in line]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def proxy(server):
    started = Tinyproxy(server.workdir)
    yield started
    started.stop()


def deploy_v1(server, cd):
    group_setup(cd)
    assert server.aws("s3", "mb", "s3://bundles").ok
    www, trace = server.workdir / "www", server.workdir / "trace"
    deployment = upload_and_deploy(server, revision(server.workdir, "v1.tgz", "v1", www, trace), "v1.tgz")
    return deployment, www


def closed_port_url():
    return f"http://127.0.0.1:{free_port()}"


def test_the_agent_reaches_the_server_only_through_its_proxy_uri(server, cd, hosts, proxy):
    host = hosts("web1", start=False)
    config = host.config.read_text()
    host.config.write_text(config + f":proxy_uri: {proxy.url}\n")
    host.start()
    deployment, www = deploy_v1(server, cd)
    info = wait_for_status(cd, deployment, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log()[-3000:])
    assert (www / "index.html").read_text() == "<h1>v1</h1>\n"
    # The polls, the reports and the bundle download all went through the proxy.
    forwarded = proxy.requests()
    assert ("POST", server.endpoint + "/") in forwarded, forwarded[:5]
    assert any(method == "GET" and "/bundles/v1.tgz" in url for method, url in forwarded), forwarded
    host.stop()

    # With the proxy away the agent reaches nothing, though the server would answer it directly.
    host.config.write_text(config + f":proxy_uri: {closed_port_url()}\n")
    before = len(host.log())
    host.start()
    second = upload_and_deploy(server, revision(server.workdir, "v2.tgz", "v2", www, server.workdir / "trace"),
                               "v2.tgz")
    seen = len(proxy.requests())

    def refused():
        log = host.log()[before:]
        return "polling for lifecycle events failed" in log and "Connection refused" in log

    wait_for(refused, timeout=30)
    # The host never picked its command up: the deployment waits, and the proxy saw nothing more.
    assert cd.get_deployment(deploymentId=second)["deploymentInfo"]["status"] in ("Created", "InProgress")
    assert len(proxy.requests()) == seen
    assert (www / "index.html").read_text() == "<h1>v1</h1>\n"
    cd.stop_deployment(deploymentId=second)


def test_the_agent_honours_http_proxy_and_no_proxy(server, cd, hosts, proxy):
    # HTTP_PROXY alone: through the proxy.
    host = hosts("web1", start=False)
    host.start(HTTP_PROXY=proxy.url)
    deployment, www = deploy_v1(server, cd)
    info = wait_for_status(cd, deployment, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log()[-3000:])
    assert ("POST", server.endpoint + "/") in proxy.requests()
    host.stop()

    # NO_PROXY naming the server: directly, though HTTP_PROXY names a proxy that is not there.
    seen = len(proxy.requests())
    host.start(HTTP_PROXY=closed_port_url(), NO_PROXY="127.0.0.1")
    second = upload_and_deploy(server, revision(server.workdir, "v2.tgz", "v2", www, server.workdir / "trace"),
                               "v2.tgz")
    info = wait_for_status(cd, second, timeout=90)
    assert info["status"] == "Succeeded", (info, host.log()[-3000:])
    assert (www / "index.html").read_text() == "<h1>v2</h1>\n"
    assert len(proxy.requests()) == seen


def test_an_https_server_is_reached_through_https_proxy(landfall_factory, tmp_path):
    ca, certificate, key = ca_issued_certificate(tmp_path)
    server = landfall_factory(start=False)
    server.start("--tls-cert", str(certificate), "--tls-key", str(key))
    server.lines["AWS_CA_BUNDLE"] = str(ca)
    proxy = Tinyproxy(server.workdir)
    host = None
    try:
        host = Host(server, "web1", {"role": "web"})
        # HTTPS_PROXY: the agent tunnels to the server through the proxy (CONNECT), and trusts
        # the server's certificate through SSL_CERT_FILE.
        host.start(HTTPS_PROXY=proxy.url, SSL_CERT_FILE=str(ca))
        def polled():
            listed = server.landfall("instances", "--output", "json")
            assert listed.ok, listed.stderr
            return listed.json[0]["agent"] is not None
        wait_for(polled, timeout=30)
        port = server.endpoint.rsplit(":", 1)[1]
        assert ("CONNECT", f"127.0.0.1:{port}") in proxy.requests(), proxy.requests()[:5]
    finally:
        if host is not None:
            host.stop()
        proxy.stop()
