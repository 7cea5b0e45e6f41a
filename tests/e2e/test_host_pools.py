"""Host pools: named sets of registered hosts (`landfall pool ...`), which deployment groups name in
their autoScalingGroups as CodeDeploy groups name Auto Scaling groups. What joining a pool does to
a host's deployments is in test_fleet.py."""

from hostsim import wait_for
from monitoring import deploy, revision, setup_group

POOL = "Landfall_20261122."


def register(server, *names):
    for name in names:
        done = server.aws("deploy", "register-on-premises-instance", "--instance-name", name,
                          "--iam-user-arn", f"arn:aws:iam::123456789012:user/{name}")
        assert done.ok, done.stderr


def pools(server, *args):
    listed = server.landfall("pool", "list", *args, "--output", "json")
    assert listed.ok, listed.stderr
    return listed.json


def refused(server, operation, body):
    status, answer = server.raw(POOL + operation, body)
    assert status == 400, answer
    return answer["__type"], answer["message"]


def test_pools_are_created_changed_listed_and_deleted(server):
    register(server, "web-1", "web-2", "web-3")
    created = server.landfall("pool", "create", "web", "web-2", "web-1", "web-1", "--output", "json")
    assert created.ok, created.stderr
    [pool] = created.json
    assert (pool["poolName"], pool["instanceNames"]) == ("web", ["web-1", "web-2"])
    assert "deploymentGroups" not in pool
    assert server.landfall("pool", "create", "empty").ok

    added = server.landfall("pool", "add", "web", "web-3", "web-1", "--output", "json")
    assert added.ok, added.stderr
    assert added.json[0]["instanceNames"] == ["web-1", "web-2", "web-3"]
    removed = server.landfall("pool", "remove", "web", "web-2", "--output", "json")
    assert removed.ok, removed.stderr
    assert removed.json[0]["instanceNames"] == ["web-1", "web-3"]
    assert [(p["poolName"], p["instanceNames"]) for p in pools(server)] == [("empty", []), ("web", ["web-1", "web-3"])]

    # The text view names the hosts and the groups using each pool.
    setup_group(server, extra=("--auto-scaling-groups", "web"))
    assert pools(server, "web")[0]["deploymentGroups"] == ["shop/web"]
    text = server.landfall("pool", "list")
    assert text.ok, text.stderr
    row = next(line for line in text.stdout.splitlines() if line.startswith("web "))
    assert "web-1, web-3" in row and "shop/web" in row

    # A pool a group names cannot go: the group would lose its hosts without a word.
    in_use = server.landfall("pool", "delete", "web")
    assert in_use.returncode == 1 and "HostPoolInUseException" in in_use.stderr and "shop/web" in in_use.stderr
    assert [p["poolName"] for p in pools(server)] == ["empty", "web"]
    assert server.aws("deploy", "update-deployment-group", "--application-name", "shop",
                      "--current-deployment-group-name", "web", "--auto-scaling-groups", "[]").ok
    deleted = server.landfall("pool", "delete", "web")
    assert deleted.ok and "deleted host pool web" in deleted.stdout
    assert [p["poolName"] for p in pools(server)] == ["empty"]


def test_bad_pool_requests_are_refused_and_change_nothing(server):
    register(server, "web-1")
    assert server.landfall("pool", "create", "web", "web-1").ok
    before = pools(server)
    assert refused(server, "CreateHostPool", {"poolName": "web"})[0] == "HostPoolAlreadyExistsException"
    code, message = refused(server, "CreateHostPool", {"poolName": "other", "instanceNames": ["web-1", "ghost"]})
    assert code == "InstanceNotRegisteredException" and "ghost" in message
    assert refused(server, "CreateHostPool", {"poolName": ""})[0] == "InvalidInputException"
    assert refused(server, "CreateHostPool", {"poolName": "x" * 256})[0] == "InvalidInputException"
    assert refused(server, "AddHostPoolMembers", {"poolName": "web", "instanceNames": ["ghost"]})[0] == (
        "InstanceNotRegisteredException")
    assert refused(server, "AddHostPoolMembers", {"poolName": "web", "instanceNames": []})[0] == (
        "InstanceNameRequiredException")
    assert refused(server, "AddHostPoolMembers", {"poolName": "nope", "instanceNames": ["web-1"]})[0] == (
        "HostPoolDoesNotExistException")
    assert refused(server, "RemoveHostPoolMembers", {"poolName": "nope", "instanceNames": ["web-1"]})[0] == (
        "HostPoolDoesNotExistException")
    assert refused(server, "DeleteHostPool", {"poolName": "nope"})[0] == "HostPoolDoesNotExistException"
    assert refused(server, "ListHostPools", {"poolName": "nope"})[0] == "HostPoolDoesNotExistException"
    assert pools(server) == before
    missing = server.landfall("pool", "add", "web")
    assert missing.returncode == 2  # hosts are required


def test_a_deregistered_host_leaves_its_pools(server):
    register(server, "web-1", "web-2")
    assert server.landfall("pool", "create", "web", "web-1", "web-2").ok
    assert server.aws("deploy", "deregister-on-premises-instance", "--instance-name", "web-2").ok
    assert pools(server)[0]["instanceNames"] == ["web-1"]
    # Registered again under the name, it is a new host: in no pool until added.
    register(server, "web-2")
    assert pools(server)[0]["instanceNames"] == ["web-1"]


def test_only_administrators_change_pools_and_everyone_reads_them(server):
    register(server, "web-1")
    made = server.landfall("keys", "create", "--role", "deployer")
    assert made.ok, made.stderr
    fields = dict(line.split(":", 1) for line in made.stdout.strip().splitlines())
    deployer = {"AWS_ACCESS_KEY_ID": fields["access key id"].strip(),
                "AWS_SECRET_ACCESS_KEY": fields["secret access key"].strip(), "AWS_PROFILE": ""}
    denied = server.landfall("pool", "create", "web", "web-1", env=deployer)
    assert not denied.ok and "AccessDenied" in denied.stderr
    assert pools(server) == []
    assert server.landfall("pool", "create", "web", "web-1").ok
    for change in [("add", "web", "web-1"), ("remove", "web", "web-1"), ("delete", "web")]:
        refused_change = server.landfall("pool", *change, env=deployer)
        assert not refused_change.ok and "AccessDenied" in refused_change.stderr, change
    listed = server.landfall("pool", "list", "--output", "json", env=deployer)
    assert listed.ok and listed.json[0]["instanceNames"] == ["web-1"]


def test_the_console_shows_pools_and_a_host_waiting_to_leave(server, cd, tmp_path):
    register(server, "web-1", "web-2")
    assert server.landfall("pool", "create", "web", "web-1").ok
    setup_group(server, tag="nobody", extra=("--auto-scaling-groups", "web"))
    # No agent runs on web-1: the deployment keeps work on it until it is stopped.
    deployment = deploy(server, revision(tmp_path, "v1"))
    status, answer = server.raw(POOL + "DrainInstance", {"instanceName": "web-1"})
    assert status == 200, answer
    assert answer == {"deploymentIds": [], "waitingForDeploymentIds": [deployment], "left": False}

    def row(page, name, following):
        """The instances table's row of `name` (cells as `<td data-label="...">value</td>`)."""
        return page[page.index(f'"Instance">{name}</td>'):page.index(f'"Instance">{following}</td>')]
    waiting = row(server.console_page("/console/instances"), "web-1", "web-2")
    assert '"Host pools">web</td>' in waiting and "leaving since" in waiting, waiting
    assert registered(server, "web-1")

    # Once the deployment is done with it (stopped here), the host leaves; web-2 never was leaving.
    assert server.aws("deploy", "stop-deployment", "--deployment-id", deployment).ok
    wait_for(lambda: not registered(server, "web-1"), timeout=60, message="web-1 to leave")
    page = server.console_page("/console/instances")
    assert "leaving since" not in page and "deregistered" in row(page, "web-1", "web-2")
    assert pools(server)[0]["instanceNames"] == []


def registered(server, name):
    got = server.aws("deploy", "get-on-premises-instance", "--instance-name", name)
    assert got.ok, got.stderr
    return "deregisterTime" not in got.json["instanceInfo"]
