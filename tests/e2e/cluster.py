"""Several `landfall server` replicas on one PostgreSQL, as an operator runs them: a PostgreSQL
server of their own (the Debian package's binaries, started on a free port), an external S3 store
for bundles (s3s-fs), and a real HAProxy in front that spreads connections over the replicas and
drops a replica whose /ready fails."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from conftest import Landfall
from routers import HAPROXY
from sources import S3Store, free_port, wait_until_listening


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/test installs the postgresql package)")
    return found[-1]


class Postgres:
    """A PostgreSQL server in a directory of its own; runs as the postgres user when the tests
    run as root (PostgreSQL refuses root)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="landfall-pg-")
        self.as_pg = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        subprocess.run([*self.as_pg, f"{pg_bin()}/initdb", "-D", self.data, "-A", "trust", "-U", "landfall"],
                       check=True, capture_output=True)
        self.start()
        self.url = f"postgres://landfall@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args):
        subprocess.run([*self.as_pg, f"{pg_bin()}/pg_ctl", "-D", self.data, *args], check=True, capture_output=True)

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-l", os.path.join(self.dir, "log"), "-w", "-o", options, "start")

    def stop(self, mode="fast"):
        self._ctl("-m", mode, "-w", "stop")

    def sql(self, statement):
        """Runs one statement with psql; returns its rows as lists of strings."""
        done = subprocess.run([f"{pg_bin()}/psql", self.url, "-AtX", "-F", "\t", "-c", statement],
                              check=True, capture_output=True, text=True)
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def close(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


BALANCER_CONFIG = """global
    maxconn 2000
defaults
    mode tcp
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    timeout check 1s
frontend landfall
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /ready
{servers}
"""


class Cluster:
    """`size` replicas sharing one PostgreSQL and one external S3 store, behind HAProxy."""

    def __init__(self, workdir, checker, size=3, extra_args=()):
        self.workdir = workdir
        self.postgres = Postgres()
        self.s3 = S3Store(workdir)
        self.extra_args = list(extra_args)
        self.replicas = []
        for index in range(size):
            replica = Landfall(workdir / f"replica-{index}", checker)
            self.replicas.append(replica)
            self.start(replica)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"    server r{index} {replica.endpoint.split('://')[1]} check inter 300ms fall 2 rise 2"
            for index, replica in enumerate(self.replicas)
        )
        self.balancer_config = workdir / "balancer.cfg"
        self.balancer_config.write_text(BALANCER_CONFIG.format(port=self.port, servers=servers))
        self.balancer_log = open(workdir / "balancer.log", "w")
        self.balancer = subprocess.Popen([HAPROXY, "-db", "-f", str(self.balancer_config)],
                                         stdout=self.balancer_log, stderr=self.balancer_log)
        wait_until_listening(self.port, self.balancer, self.workdir / "balancer.log", "HAProxy", timeout=10)

    def start(self, replica, listen="127.0.0.1:0"):
        replica.start("--store", self.postgres.url, *self.extra_args, listen=listen, env=self.s3.server_env())
        # Only the first server on a new database writes the administrator's credentials; an
        # operator hands that file to whoever needs it.
        first = self.replicas[0]
        if replica is not first:
            replica.lines["AWS_SHARED_CREDENTIALS_FILE"] = str(first.data_dir / "credentials")

    def holder(self, name):
        """The holder of lease `name` as the store has it (None if nobody holds it)."""
        rows = self.postgres.sql(f"SELECT holder FROM leases WHERE name = '{name}'")
        return rows[0][0] if rows else None

    def replica_at(self, address):
        """The replica listening at `address` (host:port)."""
        return next(r for r in self.replicas if r.endpoint.endswith(address))

    def lease_holder(self, name, timeout=30):
        """The replica holding lease `name` (waits for one)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            holder = self.holder(name)
            if holder:
                return self.replica_at(holder.split("/")[0])
            time.sleep(0.1)
        raise AssertionError(f"nobody took the lease {name}")

    def close(self):
        for replica in self.replicas:
            replica.stop()
        self.balancer.terminate()
        self.balancer.wait(timeout=10)
        self.balancer_log.close()
        self.s3.stop()
        self.postgres.close()
