"""The S3-compatible bundle store: the aws CLI's `s3` commands, boto3, and `aws deploy push` against the
server's own listener, with S3's errors, authentication, roles, and nothing half-stored."""

import base64
import datetime
import hashlib
import os
import pathlib
import re
import urllib.error
import urllib.request
import zlib

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import error_code, self_signed_certificate, signing_time, utcnow
from hostsim import read_simple_yaml

MB = 1024 * 1024


def s3_client(server, key=None, endpoint=None, verify=None):
    access_key_id, secret, region = server.admin_key()
    if key is not None:
        access_key_id, secret = key
    session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret, region_name=region)
    return session.client(
        "s3",
        endpoint_url=endpoint or server.endpoint,
        verify=verify,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def s3(server):
    return s3_client(server)


def s3_refused(code, call, **kwargs):
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    assert error_code(excinfo) == code, excinfo.value.response
    return excinfo.value.response


def make_key(server, role):
    result = server.landfall("keys", "create", "--role", role)
    assert result.ok, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.strip().splitlines())
    return fields["access key id"].strip(), fields["secret access key"].strip()


def cli_config(tmp_path):
    """An aws CLI config with a low multipart threshold, for the server's profile."""
    config = tmp_path / "aws-config"
    config.write_text("[profile landfall]\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n")
    return {"AWS_CONFIG_FILE": str(config)}


def multipart_etag(data, part_size):
    digests = b"".join(hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size))
    return f"{hashlib.md5(digests).hexdigest()}-{-(-len(data) // part_size)}"


def raw(server, method, path, body=b"", headers=None, key=None, sign=True, send_body=None, trailer=False, after=None):
    """One hand-made S3 request, signed by botocore's S3 signer (which signs the payload's SHA-256
    over http://, or STREAMING-UNSIGNED-PAYLOAD-TRAILER with `trailer`). `send_body` and `after`
    (headers) replace parts of the request after signing. Returns (status, headers, body)."""
    access_key_id, secret, region = server.admin_key()
    if key is not None:
        access_key_id, secret = key
    request = AWSRequest(method=method, url=server.endpoint + path, data=body, headers=dict(headers or {}))
    if trailer:
        request.context["checksum"] = {"request_algorithm": {"in": "trailer"}}
    if sign:
        botocore.auth.S3SigV4Auth(Credentials(access_key_id, secret), "s3", region).add_auth(request)
    prepared = request.prepare()
    data = prepared.body if send_body is None else send_body
    sent_headers = {**dict(prepared.headers.items()), **(after or {})}
    http_request = urllib.request.Request(prepared.url, data=data, headers=sent_headers, method=method)
    try:
        with urllib.request.urlopen(http_request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def xml_code(body):
    found = re.search(rb"<Code>([^<]+)</Code>", body)
    return found.group(1).decode() if found else None


def stored_files(server):
    """Every file under the data directory, relative to it."""
    return {path.relative_to(server.data_dir) for path in server.data_dir.rglob("*") if path.is_file()}


def leftovers(server):
    """What uploads left in the temporary area and in pending multipart uploads."""
    root = server.data_dir / "s3"
    return list((root / "tmp").iterdir()) + [p for p in (root / "buckets").glob("*/uploads/*")]


# -- the aws CLI ---------------------------------------------------------------------------------

def test_aws_cli_round_trip_small_and_multipart(server, tmp_path):
    env = cli_config(tmp_path)
    assert server.aws("s3", "mb", "s3://bundles", env=env).ok
    source = tmp_path / "up"
    (source / "dir").mkdir(parents=True)
    small = os.urandom(3000)
    big = os.urandom(20 * 1000 * 1000)
    (source / "dir" / "small.bin").write_bytes(small)
    (source / "big.bin").write_bytes(big)
    # One single PUT and one multipart upload (20 MB in 5 MB parts), then both back.
    result = server.aws("s3", "cp", str(source), "s3://bundles/", "--recursive", "--no-progress", env=env)
    assert result.ok, result.stderr
    result = server.aws("s3", "cp", "s3://bundles/", str(tmp_path / "down"), "--recursive", "--no-progress", env=env)
    assert result.ok, result.stderr
    assert (tmp_path / "down" / "dir" / "small.bin").read_bytes() == small
    assert (tmp_path / "down" / "big.bin").read_bytes() == big

    s3 = s3_client(server)
    head = s3.head_object(Bucket="bundles", Key="big.bin")
    assert head["ETag"] == f'"{multipart_etag(big, 5 * MB)}"'
    assert head["ContentLength"] == len(big)
    head = s3.head_object(Bucket="bundles", Key="dir/small.bin")
    assert head["ETag"] == f'"{hashlib.md5(small).hexdigest()}"'
    s3_refused("BucketNotEmpty", s3.delete_bucket, Bucket="bundles")
    result = server.aws("s3", "rb", "s3://bundles", "--force", env=env)
    assert result.ok, result.stderr
    assert s3.list_buckets()["Buckets"] == []
    assert not leftovers(server)


def test_aws_s3_ls_pages_prefixes_and_delimiters(server, s3):
    s3.create_bucket(Bucket="bkt")
    keys = [f"logs/2026/{i:02d}.txt" for i in range(7)] + ["logs/top.txt", "a b/ü+plus.txt", "z"]
    for key in keys:
        s3.put_object(Bucket="bkt", Key=key, Body=key.encode())
    listing = server.aws("s3", "ls", "s3://bkt/logs/2026/", "--page-size", "3")
    assert listing.ok, listing.stderr
    assert sorted(line.split()[-1] for line in listing.stdout.splitlines()) == [f"{i:02d}.txt" for i in range(7)]
    top = server.aws("s3", "ls", "s3://bkt/", "--page-size", "2")
    assert [line.split(None, 1)[-1] for line in top.stdout.splitlines() if "PRE" in line] == ["a b/", "logs/"]
    assert top.stdout.rstrip().endswith("z")
    everything = server.aws("s3", "ls", "s3://bkt", "--recursive", "--page-size", "4")
    assert sorted(line.split(None, 3)[-1] for line in everything.stdout.splitlines()) == sorted(keys)


def test_aws_deploy_push_registers_the_bundle_etag(server, tmp_path):
    source = tmp_path / "app"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\nfiles: []\n")
    (source / "index.html").write_text("hello\n")
    server.client().create_application(applicationName="web")
    s3_client(server).create_bucket(Bucket="releases")
    pushed = server.aws("deploy", "push", "--application-name", "web", "--s3-location", "s3://releases/web/v1.zip",
                        "--source", str(source))
    assert pushed.ok, pushed.stderr
    etag = re.search(r"eTag=([0-9a-f]+)", pushed.stdout).group(1)
    head = s3_client(server).head_object(Bucket="releases", Key="web/v1.zip")
    assert head["ETag"].strip('"') == etag
    revision = server.aws("deploy", "get-application-revision", "--application-name", "web", "--s3-location",
                          f"bucket=releases,key=web/v1.zip,bundleType=zip,eTag={etag}")
    assert revision.ok, revision.stderr
    assert revision.json["revision"]["s3Location"]["eTag"] == etag
    body = s3_client(server).get_object(Bucket="releases", Key="web/v1.zip")["Body"].read()
    assert body.startswith(b"PK") and hashlib.md5(body).hexdigest() == etag


# -- objects -------------------------------------------------------------------------------------

def test_byte_ranges(server, s3):
    data = bytes(range(256)) * 4
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=data)
    for header, first, last in [("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
                                ("bytes=10-5000", 10, 1023)]:
        answer = s3.get_object(Bucket="bkt", Key="k", Range=header)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert answer["ContentRange"] == f"bytes {first}-{last}/1024"
        assert answer["ContentLength"] == last - first + 1
        assert answer["Body"].read() == data[first : last + 1]
    response = s3_refused("InvalidRange", s3.get_object, Bucket="bkt", Key="k", Range="bytes=1024-")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */1024"
    # A Range that is not a single byte range is ignored, as S3 does.
    assert s3.get_object(Bucket="bkt", Key="k", Range="bytes=5-1")["Body"].read() == data


def test_head_object_metadata_and_conditions(server, s3):
    s3.create_bucket(Bucket="bkt")
    put = s3.put_object(Bucket="bkt", Key="bundle.zip", Body=b"zip bytes", ContentType="application/zip",
                        Metadata={"build": "42"}, ChecksumAlgorithm="SHA256")
    etag = f'"{hashlib.md5(b"zip bytes").hexdigest()}"'
    assert put["ETag"] == etag
    assert "VersionId" not in put
    head = s3.head_object(Bucket="bkt", Key="bundle.zip")
    assert (head["ETag"], head["ContentType"], head["ContentLength"]) == (etag, "application/zip", 9)
    assert head["Metadata"] == {"build": "42"}
    assert abs((head["LastModified"] - utcnow()).total_seconds()) < 60
    assert "x-amz-request-id" in head["ResponseMetadata"]["HTTPHeaders"]
    checked = s3.get_object(Bucket="bkt", Key="bundle.zip", ChecksumMode="ENABLED")
    assert checked["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"zip bytes").digest()).decode()
    assert s3.get_object(Bucket="bkt", Key="bundle.zip", IfMatch=etag)["Body"].read() == b"zip bytes"
    s3_refused("PreconditionFailed", s3.get_object, Bucket="bkt", Key="bundle.zip", IfMatch='"0000"')
    s3_refused("304", s3.head_object, Bucket="bkt", Key="bundle.zip", IfNoneMatch=etag)
    # No versioning: only the "null" version exists.
    assert s3.get_object(Bucket="bkt", Key="bundle.zip", VersionId="null")["Body"].read() == b"zip bytes"
    s3_refused("NoSuchVersion", s3.get_object, Bucket="bkt", Key="bundle.zip", VersionId="3HL4kqtJlcpXroDTDmJ")
    s3.delete_object(Bucket="bkt", Key="bundle.zip")
    s3_refused("404", s3.head_object, Bucket="bkt", Key="bundle.zip")
    s3_refused("NoSuchKey", s3.get_object, Bucket="bkt", Key="bundle.zip")


def test_listing_v2_and_v1_pages(server, s3):
    s3.create_bucket(Bucket="bkt")
    keys = sorted([f"p/{i:03d}" for i in range(12)] + ["p/sub/x", "p/sub/y", "q", "a/../b", "sp ace/€"])
    for key in keys:
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="bkt", PaginationConfig={"PageSize": 5}))
    assert len(pages) == 4
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == keys
    assert all(page["KeyCount"] <= 5 for page in pages)
    listed = s3.list_objects_v2(Bucket="bkt", Prefix="p/", Delimiter="/", MaxKeys=1000)
    assert [c["Prefix"] for c in listed["CommonPrefixes"]] == ["p/sub/"]
    assert len(listed["Contents"]) == 12 and listed["KeyCount"] == 13
    after = s3.list_objects_v2(Bucket="bkt", StartAfter="p/011")
    assert [o["Key"] for o in after["Contents"]] == ["p/sub/x", "p/sub/y", "q", "sp ace/€"]
    # Pages that end on a common prefix resume after it.
    folded = [entry for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="bkt", Delimiter="/", PaginationConfig={"PageSize": 1})
        for entry in [c["Prefix"] for c in page.get("CommonPrefixes", [])] + [o["Key"] for o in page.get("Contents", [])]]
    assert folded == ["a/", "p/", "q", "sp ace/"]
    v1 = [o["Key"] for page in s3.get_paginator("list_objects").paginate(Bucket="bkt", PaginationConfig={"PageSize": 7})
          for o in page.get("Contents", [])]
    assert v1 == keys
    s3_refused("InvalidArgument", s3.list_objects_v2, Bucket="bkt", ContinuationToken="!!not-a-token!!")


def test_missing_and_invalid_names(server, s3):
    s3_refused("NoSuchBucket", s3.list_objects_v2, Bucket="nope")
    s3_refused("NoSuchBucket", s3.put_object, Bucket="nope", Key="k", Body=b"x")
    s3_refused("NoSuchBucket", s3.get_object, Bucket="nope", Key="k")
    s3_refused("404", s3.head_bucket, Bucket="nope")
    s3_refused("NoSuchBucket", s3.delete_bucket, Bucket="nope")
    for bad in ["Bad_Name", "ab", "a..b", "192.168.0.1"]:
        status, _, body = raw(server, "PUT", f"/{bad}")
        assert (status, xml_code(body)) == (400, "InvalidBucketName"), bad
    s3.create_bucket(Bucket="bkt")
    # Again: in us-east-1, S3 answers its owner with success (elsewhere 409, see below).
    s3.create_bucket(Bucket="bkt")
    s3_refused("NoSuchKey", s3.get_object, Bucket="bkt", Key="missing")
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    s3_refused("BucketNotEmpty", s3.delete_bucket, Bucket="bkt")
    # Deleting a missing key succeeds, as in S3.
    s3.delete_object(Bucket="bkt", Key="missing")
    deleted = s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "k"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["k", "never"]
    s3.delete_bucket(Bucket="bkt")
    assert s3.list_buckets()["Buckets"] == []


def test_keys_cannot_escape_the_store(server, s3):
    s3.create_bucket(Bucket="bkt")
    before = stored_files(server)
    keys = ["../escape", "../../../etc/landfall-owned", "/absolute", "a/../../b", "..", ".", "x/./y", "%2e%2e/z",
            "k" * 1024]
    for key in keys:
        s3.put_object(Bucket="bkt", Key=key, Body=key.encode())
    added = stored_files(server) - before
    assert len(added) == len(keys)
    for path in added:
        assert path.parent == pathlib.Path("s3/buckets/bkt/objects"), path
    assert not (server.data_dir.parent / "escape").exists()
    for key in keys:
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == key.encode()
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]) == sorted(keys)
    s3_refused("KeyTooLongError", s3.put_object, Bucket="bkt", Key="k" * 1025, Body=b"")


# -- integrity: nothing half-stored --------------------------------------------------------------

def test_body_not_matching_its_signed_sha256_is_not_stored(server, s3):
    s3.create_bucket(Bucket="bkt")
    status, _, body = raw(server, "PUT", "/bkt/k", body=b"the signed body", send_body=b"another body!!!")
    assert (status, xml_code(body)) == (400, "XAmzContentSHA256Mismatch")
    assert b"<S3ComputedContentSHA256>" in body
    s3_refused("NoSuchKey", s3.get_object, Bucket="bkt", Key="k")
    assert not leftovers(server)
    # The same request, body unchanged, is stored.
    status, _, _ = raw(server, "PUT", "/bkt/k", body=b"the signed body")
    assert status == 200
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"the signed body"


def test_declared_digests_must_match(server, s3):
    s3.create_bucket(Bucket="bkt")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    s3_refused("BadDigest", s3.put_object, Bucket="bkt", Key="k", Body=b"data", ContentMD5=wrong_md5)
    s3_refused("BadDigest", s3.put_object, Bucket="bkt", Key="k", Body=b"data", ChecksumCRC32="AAAAAA==")
    s3_refused("InvalidDigest", s3.put_object, Bucket="bkt", Key="k", Body=b"data", ContentMD5="short")
    right_md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket="bkt", Key="ok", Body=b"data", ContentMD5=right_md5)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["ok"]
    assert not leftovers(server)


def aws_chunked(data, trailer=None, chunk=4):
    body = b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + chunk]), data[i : i + chunk]) for i in range(0, len(data), chunk))
    return body + b"0\r\n" + (b"%s\r\n" % trailer.encode() if trailer else b"") + b"\r\n"


def test_aws_chunked_bodies_with_trailing_checksums(server, s3):
    """What botocore sends over https (STREAMING-UNSIGNED-PAYLOAD-TRAILER), by hand over http."""
    s3.create_bucket(Bucket="bkt")
    data = b"hello world, in chunks"
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    headers = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-decoded-content-length": str(len(data))}
    good = aws_chunked(data, f"x-amz-checksum-crc32:{crc32}")
    status, response_headers, body = raw(server, "PUT", "/bkt/good", good, headers, trailer=True)
    assert status == 200, body
    assert response_headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket="bkt", Key="good")["Body"].read() == data
    status, _, body = raw(server, "PUT", "/bkt/bad", aws_chunked(data, "x-amz-checksum-crc32:AAAAAA=="), headers, trailer=True)
    assert (status, xml_code(body)) == (400, "BadDigest")
    status, _, body = raw(server, "PUT", "/bkt/short", good[:-20], headers, trailer=True)
    assert (status, xml_code(body)) == (400, "IncompleteBody")
    status, _, body = raw(server, "PUT", "/bkt/signed", b"x", after={"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    assert (status, xml_code(body)) == (501, "NotImplemented")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["good"]
    assert not leftovers(server)


def test_aws_cli_over_tls_uploads_aws_chunked(landfall_factory, tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    server = landfall_factory(start=False)
    server.start("--tls-cert", str(certificate), "--tls-key", str(key))
    env = {**cli_config(tmp_path), "AWS_CA_BUNDLE": str(certificate)}
    data = os.urandom(6 * MB + 5)
    (tmp_path / "upload.bin").write_bytes(data)
    s3 = s3_client(server, verify=str(certificate))
    s3.create_bucket(Bucket="secure")
    result = server.aws("s3", "cp", str(tmp_path / "upload.bin"), "s3://secure/upload.bin", "--no-progress", "--debug", env=env)
    assert result.ok, result.stderr[-2000:]
    assert "aws-chunked" in result.stderr and "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in result.stderr
    assert s3.get_object(Bucket="secure", Key="upload.bin")["Body"].read() == data
    small = s3.put_object(Bucket="secure", Key="small", Body=b"tiny", ChecksumAlgorithm="CRC32")
    assert small["ETag"] == f'"{hashlib.md5(b"tiny").hexdigest()}"'


def test_multipart_abort_leaves_nothing_and_completion_checks_parts(server, s3):
    s3.create_bucket(Bucket="bkt")
    upload = s3.create_multipart_upload(Bucket="bkt", Key="big", ContentType="application/zip")["UploadId"]
    part1 = s3.upload_part(Bucket="bkt", Key="big", UploadId=upload, PartNumber=1, Body=b"a" * (5 * MB))["ETag"]
    part2 = s3.upload_part(Bucket="bkt", Key="big", UploadId=upload, PartNumber=2, Body=b"tail")["ETag"]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket="bkt", Key="big", UploadId=upload)["Parts"]] == [1, 2]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="bkt").get("Uploads", [])] == [upload]

    def complete(parts):
        return s3.complete_multipart_upload(Bucket="bkt", Key="big", UploadId=upload, MultipartUpload={"Parts": parts})

    s3_refused("InvalidPart", complete, parts=[{"PartNumber": 1, "ETag": part1}, {"PartNumber": 2, "ETag": '"00"'}])
    s3_refused("InvalidPartOrder", complete, parts=[{"PartNumber": 2, "ETag": part2}, {"PartNumber": 1, "ETag": part1}])
    s3_refused("EntityTooSmall", complete, parts=[{"PartNumber": 2, "ETag": part2}, {"PartNumber": 3, "ETag": part2}])
    s3.abort_multipart_upload(Bucket="bkt", Key="big", UploadId=upload)
    s3_refused("NoSuchUpload", s3.upload_part, Bucket="bkt", Key="big", UploadId=upload, PartNumber=3, Body=b"x")
    s3_refused("NoSuchUpload", s3.abort_multipart_upload, Bucket="bkt", Key="big", UploadId=upload)
    s3_refused("NoSuchKey", s3.get_object, Bucket="bkt", Key="big")
    assert s3.list_multipart_uploads(Bucket="bkt").get("Uploads", []) == []
    assert not leftovers(server)

    upload = s3.create_multipart_upload(Bucket="bkt", Key="big", ContentType="application/zip")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket="bkt", Key="big", UploadId=upload, PartNumber=n, Body=body)["ETag"]}
             for n, body in [(1, b"a" * (5 * MB)), (2, b"tail")]]
    done = complete(parts=parts)
    assert done["ETag"] == f'"{multipart_etag(b"a" * (5 * MB) + b"tail", 5 * MB)}"'
    got = s3.get_object(Bucket="bkt", Key="big", Range="bytes=-6")
    assert (got["Body"].read(), got["ContentType"]) == (b"aatail", "application/zip")
    assert not leftovers(server)


# -- authentication and roles --------------------------------------------------------------------

def test_authentication_failures(server, s3):
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"secret bundle")
    access_key_id, _, _ = server.admin_key()
    status, _, body = raw(server, "GET", "/bkt/k", sign=False)
    assert (status, xml_code(body)) == (403, "AccessDenied")
    status, _, body = raw(server, "GET", "/bkt/k", key=(access_key_id, "not-the-secret"))
    assert (status, xml_code(body)) == (403, "SignatureDoesNotMatch")
    status, _, body = raw(server, "GET", "/bkt/k", key=("AKLFNOSUCHKEY0000000", "whatever"))
    assert (status, xml_code(body)) == (403, "InvalidAccessKeyId")
    with signing_time(utcnow() - datetime.timedelta(hours=1)):
        status, _, body = raw(server, "GET", "/bkt/k")
    assert (status, xml_code(body)) == (403, "RequestTimeTooSkewed")
    # Presigned URLs (SigV4) work, and only as signed; SigV2 is refused as S3 does.
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in v2
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(v2, timeout=10)
    assert "Please use AWS4-HMAC-SHA256" in excinfo.value.read().decode()
    access_key_id, secret, region = server.admin_key()
    presigner = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret, region_name=region).client(
        "s3", endpoint_url=server.endpoint, config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"}, ExpiresIn=60)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"secret bundle"
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(url.replace("/bkt/k", "/bkt/other"), timeout=10)
    assert xml_code(excinfo.value.read()) == "SignatureDoesNotMatch"
    assert secret not in server.log()


def test_read_only_and_instance_keys(server, s3, tmp_path):
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="bundle.zip", Body=b"bundle")
    reader = s3_client(server, key=make_key(server, "read-only"))
    assert reader.get_object(Bucket="bkt", Key="bundle.zip")["Body"].read() == b"bundle"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket="bkt")["Contents"]] == ["bundle.zip"]
    s3_refused("AccessDenied", reader.put_object, Bucket="bkt", Key="new", Body=b"x")
    s3_refused("AccessDenied", reader.delete_object, Bucket="bkt", Key="bundle.zip")
    s3_refused("AccessDenied", reader.create_bucket, Bucket="other")

    config_dir = tmp_path / "host"
    registered = server.landfall("instance", "register", "web-1", "--agent-config-dir", str(config_dir))
    assert registered.ok, registered.stderr
    on_premises = read_simple_yaml(config_dir / "codedeploy.onpremises.yml")
    agent = s3_client(server, key=(on_premises["aws_access_key_id"], on_premises["aws_secret_access_key"]))
    # An agent's key reads only the bundles of deployments to its host (none here; see
    # test_hardening.py for one that does).
    s3_refused("AccessDenied", agent.get_object, Bucket="bkt", Key="bundle.zip")
    s3_refused("403", agent.head_object, Bucket="bkt", Key="bundle.zip")
    s3_refused("AccessDenied", agent.list_objects_v2, Bucket="bkt")
    s3_refused("AccessDenied", agent.put_object, Bucket="bkt", Key="bundle.zip", Body=b"evil")
    s3_refused("AccessDenied", agent.list_buckets)
    assert s3.get_object(Bucket="bkt", Key="bundle.zip")["Body"].read() == b"bundle"

    deployer = s3_client(server, key=make_key(server, "deployer"))
    deployer.put_object(Bucket="bkt", Key="from-deployer", Body=b"ok")


def test_a_bucket_created_again_outside_us_east_1_is_already_owned(landfall_factory):
    server = landfall_factory(start=False)
    server.start("--region", "eu-west-1")
    s3 = s3_client(server)
    s3.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3_refused("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket="bkt",
               CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
