"""The lake in an S3 bucket (or any S3-compatible store), under any warehouse that reads it.

The client comes from dagster-aws's S3Resource, so credentials are found the standard boto3 way
(environment, shared config and credentials files, an instance or task role). AWS_ENDPOINT_URL
points it at an S3-compatible store or at moto's server in the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from lake_assets.resources.base import (
    UNLOOKED,
    ObjectStoreLake,
    ParquetFooter,
    Unlooked,
    content_type,
    footer_from_tail,
)

# Files above one part go up as a multipart upload of parts this size: the object appears only
# when CompleteMultipartUpload commits them, and memory holds one part at a time.
PART_SIZE = 16 * 1024 * 1024
# CopyObject copies at most 5 GiB in one request.
MAX_COPY = 5 * 1024**3
_PRECONDITION = ("PreconditionFailed", "ConditionalRequestConflict", "412")
_MISSING = ("404", "NoSuchKey", "NotFound")


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class S3Lake(ObjectStoreLake):
    """Lake in s3://bucket/prefix/, with the same relative paths as the local lake."""

    bucket: str
    region: str | None = None
    # AWS_ENDPOINT_URL: an S3-compatible store (MinIO, moto's server); None: AWS itself.
    endpoint_url: str | None = None

    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            self._client = S3Resource(
                region_name=self.region, endpoint_url=self.endpoint_url
            ).get_client()
        return self._client

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def _head(self, key: str) -> dict | None:
        try:
            return self.client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise

    def version(self, path: str) -> str | None:
        current = self._head(self.key(path))
        return current["ETag"] if current else None

    def _unchanged_since(self, path: str, seen: str | None | Unlooked = UNLOOKED) -> dict:
        """The write's condition: the object this run saw is still there, or still none is.
        A concurrent writer's object is then refused (412), never silently overwritten."""
        expected = self.expected(path, seen)
        return {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}

    def _conflict(self, path: str, e: ClientError) -> Exception:
        return self.conflict(path) if _code(e) in _PRECONDITION else e

    def put_file(self, local_file: Path, path: str, seen: str | None | Unlooked = UNLOOKED) -> None:
        key = self.key(path)
        condition = self._unchanged_since(path, seen)
        size = local_file.stat().st_size
        try:
            if size <= PART_SIZE:
                with open(local_file, "rb") as f:
                    self.client().put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=f,
                        ContentType=content_type(key),
                        ChecksumAlgorithm="CRC32",
                        **condition,
                    )
            else:
                self._multipart(local_file, key, condition)
        except ClientError as e:
            raise self._conflict(path, e) from e

    def _multipart(self, local_file: Path, key: str, condition: dict[str, str]) -> None:
        client = self.client()
        upload = client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type(key), ChecksumAlgorithm="CRC32"
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            with open(local_file, "rb") as f:
                while chunk := f.read(PART_SIZE):
                    number = len(parts) + 1
                    part = client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ChecksumAlgorithm="CRC32",
                    )
                    parts.append(
                        {
                            "PartNumber": number,
                            "ETag": part["ETag"],
                            "ChecksumCRC32": part["ChecksumCRC32"],
                        }
                    )
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            # Parts of an upload never completed are invisible but billed: remove them.
            try:
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError:
                pass
            raise

    @contextmanager
    def local_copy(self, path: str) -> Iterator[Path]:
        with self.staging_dir() as d:
            local = d / Path(path).name
            try:
                # A managed download in ranged parts, its checksum verified against the upload's.
                self.client().download_file(
                    self.bucket, self.key(path), str(local), ExtraArgs={"ChecksumMode": "ENABLED"}
                )
            except ClientError as e:
                if _code(e) in _MISSING:
                    raise self.missing(path) from None
                raise
            yield local

    def move(self, src: str, dst: str) -> None:
        source = self._head(self.key(src))
        if source is None:
            raise FileNotFoundError(f"{self.uri(src)} is not in the lake")
        copy_source = {"Bucket": self.bucket, "Key": self.key(src)}
        try:
            if source["ContentLength"] <= MAX_COPY:
                # A server-side copy: the target appears whole, conditional on both objects
                # being the ones this run saw.
                self.client().copy_object(
                    Bucket=self.bucket,
                    Key=self.key(dst),
                    CopySource=copy_source,
                    CopySourceIfMatch=source["ETag"],
                    **self._unchanged_since(dst),
                )
            else:
                # A managed multipart copy, committed by its last request like an upload.
                self.client().copy(
                    copy_source,
                    self.bucket,
                    self.key(dst),
                    ExtraArgs={"CopySourceIfMatch": source["ETag"]},
                )
        except ClientError as e:
            raise self._conflict(dst, e) from e
        self.delete(src)

    def exists(self, path: str) -> bool:
        return self._head(self.key(path)) is not None

    def delete(self, path: str) -> None:
        # S3 answers 204 for a key that is not there.
        self.client().delete_object(Bucket=self.bucket, Key=self.key(path))

    def parquet_footer(self, path: str) -> ParquetFooter:
        key = self.key(path)
        head = self._head(key)
        if head is None:
            raise self.missing(path)

        def tail(n: int) -> bytes:
            got = self.client().get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=-{n}", IfMatch=head["ETag"]
            )
            return got["Body"].read()

        return footer_from_tail(head["ContentLength"], tail, self.uri(path))

    def list_files(self) -> list[tuple[str, int]]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=self.listing_prefix)
        )
        return sorted(
            (self.relative(o["Key"]), o["Size"]) for page in pages for o in page.get("Contents", [])
        )
