"""Revisions from outside Landfall's own bundle store, deployed through real agents: an external
S3-compatible store (a separate s3s-fs process) and a git server (git http-backend), and hostile
or broken bundles from each source failing the host with a clear message and writing nothing
outside the destination."""

import io
import tarfile
import uuid
import zipfile

import pytest

from hostsim import wait_for_status
from realhost import Host, bundle
from sources import GitServer, S3Store, commit_tree, git

SERVICE_ROLE = "arn:aws:iam::123456789012:role/landfall"


def app_files(destination, version):
    appspec = (
        "version: 0.0\nos: linux\n"
        f"files:\n  - source: site\n    destination: {destination}\n"
        "hooks:\n  ValidateService:\n    - location: check.sh\n"
    )
    return {
        "appspec.yml": (appspec, 0o644),
        "site/index.html": (f"{version}\n", 0o644),
        "check.sh": (f"#!/bin/sh\necho validating {version}\n", 0o755),
    }


def group(cd, name="web"):
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName=name, serviceRoleArn=SERVICE_ROLE,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )


def deploy(cd, revision):
    deployment_id = cd.create_deployment(applicationName="app", deploymentGroupName="web", revision=revision)["deploymentId"]
    return deployment_id, wait_for_status(cd, deployment_id, timeout=120)


def download_failure(cd, deployment_id, host="web-1"):
    """The diagnostics of the host's failed DownloadBundle (or Install) event."""
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId=host)["deploymentTarget"]["instanceTarget"]
    failed = [event for event in target["lifecycleEvents"] if event["status"] == "Failed"]
    assert failed, target
    return failed[0]["lifecycleEventName"], failed[0]["diagnostics"]["message"]


def s3_revision(bucket, key, bundle_type, etag=None):
    location = {"bucket": bucket, "key": key, "bundleType": bundle_type}
    if etag:
        location["eTag"] = etag
    return {"revisionType": "S3", "s3Location": location}


@pytest.fixture
def external(workdir):
    store = S3Store(workdir)
    yield store
    store.stop()


def test_external_store_revisions_deploy_with_presigned_urls(landfall_factory, external, workdir):
    server = landfall_factory(start=False).start(env=external.server_env())
    cd = server.client()
    host = Host(server, "web-1", {"role": "web"}).start()
    try:
        destination = workdir / f"www-{uuid.uuid4().hex[:8]}"
        external.s3.create_bucket(Bucket="releases")
        etag = external.put("releases", "app/v1.tgz", bundle(workdir / "v1.tgz", app_files(destination, "v1")))
        group(cd)

        # From the external store, its ETag checked.
        deployment_id, info = deploy(cd, s3_revision("releases", "app/v1.tgz", "tgz", etag))
        assert info["status"] == "Succeeded", (info, host.log()[-3000:])
        assert (destination / "index.html").read_text() == "v1\n"

        # The agent never held the store's credentials.
        assert S3Store.SECRET_KEY not in host.log()
        assert S3Store.SECRET_KEY not in (host.dir / "codedeployagent.yml").read_text()

        # A bucket of Landfall's own store is still served by Landfall.
        assert server.aws("s3", "mb", "s3://bundles").ok
        assert server.aws("s3", "cp", str(bundle(workdir / "v2.tgz", app_files(destination, "v2"))),
                          "s3://bundles/v2.tgz").ok
        _, info = deploy(cd, s3_revision("bundles", "v2.tgz", "tgz"))
        assert info["status"] == "Succeeded", info
        assert (destination / "index.html").read_text() == "v2\n"

        # The object was replaced after the revision named its ETag.
        external.put("releases", "app/v1.tgz", bundle(workdir / "v1b.tgz", app_files(destination, "v1b")))
        failed_id, info = deploy(cd, s3_revision("releases", "app/v1.tgz", "tgz", etag))
        assert info["status"] == "Failed"
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle"
        assert f"but the deployment names ETag {etag}" in message, message
        assert (destination / "index.html").read_text() == "v2\n"

        # A key that is not there.
        failed_id, info = deploy(cd, s3_revision("releases", "app/missing.tgz", "tgz"))
        assert info["status"] == "Failed"
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle" and "NoSuchKey" in message and external.endpoint in message, message
        assert "X-Amz-Signature" not in message
    finally:
        host.stop()


def hostile_tar(path, outside):
    """A tgz whose appspec is fine but which also tries to write `outside` through `..`."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in [("appspec.yml", "version: 0.0\nos: linux\n"),
                           ("../" * 12 + str(outside).lstrip("/"), "escaped\n")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_broken_and_hostile_bundles_from_both_stores(landfall_factory, external, workdir):
    server = landfall_factory(start=False).start(env=external.server_env())
    cd = server.client()
    host = Host(server, "web-1", {"role": "web"}).start()
    try:
        group(cd)
        outside = workdir / f"escaped-{uuid.uuid4().hex[:8]}.txt"
        destination = workdir / "www"
        external.s3.create_bucket(Bucket="releases")
        assert server.aws("s3", "mb", "s3://bundles").ok
        tgz = bundle(workdir / "ok.tgz", app_files(destination, "v1"))
        zipped = workdir / "ok.zip"
        with zipfile.ZipFile(zipped, "w") as archive:
            for name, (text, _) in app_files(destination, "v1").items():
                archive.writestr(name, text)
        garbage = workdir / "garbage.zip"
        garbage.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n")
        hostile = hostile_tar(workdir / "hostile.tgz", outside)
        no_appspec = bundle(workdir / "no-appspec.tgz", {"site/index.html": ("v1\n", 0o644)})

        cases = [
            # (file, declared type, event that fails, words the message must hold)
            (hostile, "tgz", "DownloadBundle", "refused"),
            (garbage, "zip", "DownloadBundle", "is not a zip archive"),
            (zipped, "tgz", "DownloadBundle", "the bundle is a zip archive: register it with bundleType zip"),
            (tgz, "zip", "DownloadBundle", "register it with bundleType tgz"),
            (no_appspec, "tgz", "Install", "did not find an AppSpec file"),
        ]
        for index, (path, declared, event, words) in enumerate(cases):
            for bucket in ("releases", "bundles"):
                key = f"case-{index}.{declared}"
                if bucket == "releases":
                    external.put(bucket, key, path)
                else:
                    assert server.aws("s3", "cp", str(path), f"s3://{bucket}/{key}").ok
                deployment_id, info = deploy(cd, s3_revision(bucket, key, declared))
                assert info["status"] == "Failed", (bucket, path.name, info)
                failed_event, message = download_failure(cd, deployment_id)
                assert (failed_event, words in message) == (event, True), (bucket, path.name, message)
        assert not outside.exists()
        assert not destination.exists()

        # A zip registered as zip from the external store: fine.
        external.put("releases", "ok.zip", zipped)
        _, info = deploy(cd, s3_revision("releases", "ok.zip", "zip"))
        assert info["status"] == "Succeeded", info
        assert (destination / "index.html").read_text() == "v1\n"
    finally:
        host.stop()


@pytest.fixture
def git_repo(workdir):
    """A bare repository `team/app.git` served over HTTP with a token, and a clone to commit in."""
    served = workdir / "git"
    (served / "team").mkdir(parents=True)
    work = workdir / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    token = "ghp_" + uuid.uuid4().hex
    server = GitServer(served, token=token)
    repo = {"work": work, "served": served / "team" / "app.git", "server": server, "token": token}
    yield repo
    server.stop()


def publish(repo):
    git(repo["work"], "push", "-q", "--force", str(repo["served"]), "main")


def github_revision(commit, repository="team/app"):
    return {"revisionType": "GitHub", "gitHubLocation": {"repository": repository, "commitId": commit}}


def test_git_revisions_deploy_the_exact_commit(landfall_factory, git_repo, workdir):
    destination = workdir / f"www-{uuid.uuid4().hex[:8]}"
    first = commit_tree(git_repo["work"], app_files(destination, "first"), "first")
    second = commit_tree(git_repo["work"], app_files(destination, "second"), "second")
    git(workdir, "init", "-q", "--bare", str(git_repo["served"]))
    publish(git_repo)
    outside = workdir / f"outside-{uuid.uuid4().hex[:8]}"
    hostile = commit_tree(git_repo["work"], {**app_files(destination, "hostile"), "site/evil": ("->", str(outside))},
                          "a link out of the revision")
    publish(git_repo)

    server = landfall_factory(start=False).start(
        "--git-base-url", git_repo["server"].base_url, env={"LANDFALL_GIT_TOKEN": git_repo["token"]})
    cd = server.client()
    host = Host(server, "web-1", {"role": "web"}).start()
    try:
        group(cd)
        # The older commit, not the branch tip.
        _, info = deploy(cd, github_revision(first))
        assert info["status"] == "Succeeded", (info, host.log()[-3000:])
        assert (destination / "index.html").read_text() == "first\n"
        _, info = deploy(cd, github_revision(second))
        assert info["status"] == "Succeeded", info
        assert (destination / "index.html").read_text() == "second\n"
        assert git_repo["token"] not in host.log()
        assert all(auth for _, _, auth in git_repo["server"].requests), "every request carried the token"

        # A link leaving the revision is refused; nothing changes on the host.
        failed_id, info = deploy(cd, github_revision(hostile))
        assert info["status"] == "Failed"
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle" and "refused" in message, message
        assert (destination / "index.html").read_text() == "second\n"
        assert not (destination / "evil").exists()

        # A commit the repository does not have, and a repository that does not exist.
        failed_id, _ = deploy(cd, github_revision("0" * 40))
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle" and f"{'0' * 40}" in message and "team/app.git" in message, message
        failed_id, _ = deploy(cd, github_revision(first, repository="team/nope"))
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle" and "team/nope.git" in message, message
        failed_id, _ = deploy(cd, github_revision("main"))
        event, message = download_failure(cd, failed_id)
        assert "is not a full commit hash" in message, message
    finally:
        host.stop()


def test_git_revisions_need_the_right_token(landfall_factory, git_repo, workdir):
    commit = commit_tree(git_repo["work"], app_files(workdir / "www", "v1"), "v1")
    git(workdir, "init", "-q", "--bare", str(git_repo["served"]))
    publish(git_repo)
    server = landfall_factory(start=False).start(
        "--git-base-url", git_repo["server"].base_url, env={"LANDFALL_GIT_TOKEN": "wrong-token"})
    cd = server.client()
    host = Host(server, "web-1", {"role": "web"}).start()
    try:
        group(cd)
        failed_id, info = deploy(cd, github_revision(commit))
        assert info["status"] == "Failed"
        event, message = download_failure(cd, failed_id)
        assert event == "DownloadBundle" and "cannot fetch" in message and "wrong-token" not in message, message
    finally:
        host.stop()


def test_a_lambda_appspec_object_in_the_external_store_is_read_at_create_deployment(landfall_factory, external,
                                                                                     workdir):
    server = landfall_factory(start=False).start(env=external.server_env())
    cd = server.client()
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    cd.create_deployment_group(applicationName="fn", deploymentGroupName="live",
                               serviceRoleArn="arn:aws:iam::123456789012:role/CodeDeploy")
    external.s3.create_bucket(Bucket="specs")
    spec = workdir / "appspec.yaml"
    spec.write_text("version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      Properties:\n"
                    "        Name: checkout\n        Alias: live\n        CurrentVersion: 3\n        TargetVersion: 4\n")
    etag = external.put("specs", "fn/appspec.yaml", spec)
    made = server.aws("deploy", "create-deployment", "--application-name", "fn", "--deployment-group-name", "live",
                      "--s3-location", f"bucket=specs,key=fn/appspec.yaml,bundleType=YAML,eTag={etag}")
    assert made.ok, made.stderr
    target = cd.get_deployment_target(deploymentId=made.json["deploymentId"], targetId="checkout:live")
    info = target["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"]
    assert (info["functionName"], info["currentVersion"], info["targetVersion"]) == ("checkout", "3", "4")

    # Replaced since the revision named its ETag, or not there: refused, saying why.
    spec.write_text(spec.read_text().replace("TargetVersion: 4", "TargetVersion: 5"))
    external.put("specs", "fn/appspec.yaml", spec)
    for location, expected in [(f"key=fn/appspec.yaml,bundleType=YAML,eTag={etag}", "ETag"),
                               ("key=fn/missing.yaml,bundleType=YAML", "404")]:
        refused = server.aws("deploy", "create-deployment", "--application-name", "fn", "--deployment-group-name",
                             "live", "--s3-location", f"bucket=specs,{location}")
        assert not refused.ok and "InvalidRevisionException" in refused.stderr and expected in refused.stderr, \
            refused.stderr
        assert "X-Amz-Signature" not in refused.stderr
