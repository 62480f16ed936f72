"""A real S3 endpoint for the storage tests: moto's server mode on loopback,
started once per session, with one private bucket.

`s3_server.storage` is STORAGES["default"] for this process; `s3_server.env` the
variables that point another process (a web, a worker) at the same bucket."""

import socket
import uuid
from types import SimpleNamespace

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moto-test-key", "AWS_SECRET_ACCESS_KEY": "moto-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"portal-test-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=bucket)
    storage_url = f"s3://{bucket}?endpoint_url={endpoint}&region=us-east-1"
    storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                    "access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"], "secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    "default_acl": None, "querystring_auth": True, "querystring_expire": 60, "file_overwrite": False,
                    "signature_version": "s3v4"},
    }
    yield SimpleNamespace(endpoint=endpoint, bucket=bucket, storage=storage,
                          env={"STORAGE_URL": storage_url, **CREDENTIALS})
    server.stop()
