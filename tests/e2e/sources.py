"""Revision sources outside Landfall, as real separate processes on 127.0.0.1: an S3-compatible
store (`s3s-fs`, installed by scripts/test) and a git server (git's own `http-backend` behind a
small HTTP front that asks for a token)."""

import base64
import http.server
import os
import pathlib
import socket
import subprocess
import threading
import time

import boto3
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
S3S_FS = os.environ.get("LANDFALL_S3S_FS", str(ROOT / ".tools" / "bin" / "s3s-fs"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port, process, log_path, name, timeout=30):
    """Waits for a started `process` to accept connections on `port`; raises with its log if it
    exits or takes longer than `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline or (process is not None and process.poll() is not None):
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text() if log_path else ''}")
            time.sleep(0.05)


class S3Store:
    """An `s3s-fs` process: a separate S3-compatible server with its own keys."""

    ACCESS_KEY = "EXTERNALSTOREKEY"
    SECRET_KEY = "external-store-secret-4f1e"

    def __init__(self, workdir):
        self.root = pathlib.Path(workdir) / "s3s-root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = pathlib.Path(workdir) / "s3s.log"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", self.ACCESS_KEY,
             "--secret-key", self.SECRET_KEY, str(self.root)],
            stdout=log, stderr=log,
        )
        log.close()
        wait_until_listening(self.port, self.process, self.log_path, "s3s-fs", timeout=20)
        self.s3 = boto3.session.Session(
            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY, region_name="us-east-1"
        ).client("s3", endpoint_url=self.endpoint, config=Config(s3={"addressing_style": "path"}))

    def server_env(self):
        """What `landfall server` needs to use this store."""
        return {
            "LANDFALL_EXTERNAL_S3_ENDPOINT": self.endpoint,
            "LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID": self.ACCESS_KEY,
            "LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }

    def put(self, bucket, key, path):
        """Uploads a file; returns its ETag (unquoted)."""
        with open(path, "rb") as body:
            answer = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return answer["ETag"].strip('"')

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class GitServer:
    """Serves the bare repositories under `root` over smart HTTP (git http-backend as CGI),
    answering 401 unless the request carries `token` as its Basic password."""

    def __init__(self, root, token=None):
        self.root = pathlib.Path(root)
        self.token = token
        self.requests = []
        backend = pathlib.Path(subprocess.check_output(["git", "--exec-path"], text=True).strip()) / "git-http-backend"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.cgi()

            def do_POST(self):
                self.cgi()

            def cgi(self):
                outer.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if outer.token is not None and not outer.authorised(self.headers.get("Authorization")):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(outer.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                completed = subprocess.run([str(backend)], input=body, capture_output=True, env=env)
                head, _, payload = completed.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def authorised(self, header):
        if not header or not header.startswith("Basic "):
            return False
        _, _, password = base64.b64decode(header[len("Basic "):]).decode().partition(":")
        return password == self.token

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit_tree(repo, files, message):
    """Replaces the work tree of `repo` with `files` ({path: (text, mode)} or {path: ("->", target)}
    for a symbolic link), commits, and returns the commit id."""
    for child in repo.iterdir():
        if child.name != ".git":
            subprocess.run(["rm", "-rf", str(child)], check=True)
    for name, (content, mode) in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "->":
            path.symlink_to(mode)
        else:
            path.write_text(content)
            path.chmod(mode)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")
