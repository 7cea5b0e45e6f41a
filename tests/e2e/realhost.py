"""Real hosts for end-to-end tests: a registered instance and its `landfall agent` process,
started from the files `landfall instance register` wrote; and bundles to deploy to them."""

import io
import pathlib
import signal
import subprocess
import tarfile

from conftest import LANDFALL_BIN
from hostsim import agent_call, read_simple_yaml

# The slim agent binary, built beside `landfall` (`cargo build --workspace`).
SLIM_AGENT = str(pathlib.Path(LANDFALL_BIN).with_name("landfall-agent"))

# Put in the agent's own environment: hook scripts must not see them.
AGENT_ENV_SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAAGENTENVIRONMENT", "AWS_SECRET_ACCESS_KEY": "agent-environment-secret"}


class Host:
    """A registered instance and its `landfall agent` process."""

    def __init__(self, server, name, tags, agent_endpoint=None):
        self.server = server
        self.name = name
        self.dir = server.workdir / "hosts" / name
        args = ["instance", "register", name, "--agent-config-dir", str(self.dir),
                "--root-dir", str(self.dir / "root"), "--log-dir", str(self.dir / "log")]
        if agent_endpoint:
            args += ["--agent-endpoint", agent_endpoint]
        for key, value in tags.items():
            args += ["--tag", f"{key}={value}"]
        result = server.landfall(*args)
        assert result.ok, result.stderr
        self.config = self.dir / "codedeployagent.yml"
        on_premises = read_simple_yaml(self.dir / "codedeploy.onpremises.yml")
        self.arn = on_premises["iam_user_arn"]
        self.key = (on_premises["aws_access_key_id"], on_premises["aws_secret_access_key"])
        self.region = on_premises["region"]
        self.log_path = self.dir / "agent.log"
        self.process = None

    def start(self, agent=(LANDFALL_BIN, "agent"), **environment):
        """Starts the agent (`agent`: the command, `landfall agent` or the slim binary);
        `environment` adds variables (hooks inherit the agent's)."""
        log = open(self.log_path, "a")
        env = {**self.server._clean_env(), **AGENT_ENV_SECRETS, "LANDFALL_LOG": "info,landfall_agent=debug", **environment}
        self.process = subprocess.Popen(
            [*agent, "--config", str(self.config)], stdout=log, stderr=log, env=env, cwd=self.dir
        )
        log.close()
        return self

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def stop(self):
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def call(self, operation, body, key=None):
        """One agent-protocol call signed with this host's key (or `key`)."""
        return agent_call(self.server.endpoint, self.region, key or self.key, operation, body)


def bundle(path, files):
    """A tgz with one top directory (which the agent strips, since it holds the appspec)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"app/{name}")
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return path
