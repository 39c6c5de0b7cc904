"""The lake in an Azure Blob Storage container, under any warehouse that reads it.

With AZURE_STORAGE_CONNECTION_STRING the client uses it (Azurite in the tests); otherwise it
reaches https://<AZURE_STORAGE_ACCOUNT>.blob.core.windows.net with DefaultAzureCredential
(environment, workload or managed identity, the Azure CLI's login).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings
from pydantic import PrivateAttr

from lake_assets.resources.base import (
    UNLOOKED,
    ObjectStoreLake,
    ParquetFooter,
    Unlooked,
    content_type,
    footer_from_tail,
)

# Blocks staged per request and the size above which an upload is staged at all. Staged blocks
# are invisible until the one Put Block List call commits them, so an upload appears whole or
# not at all; memory holds max_concurrency blocks.
BLOCK_SIZE = 8 * 1024 * 1024
SINGLE_PUT = 32 * 1024 * 1024
CONCURRENCY = 2
# A copy inside one account finishes at once; one that is still pending is waited for this long.
COPY_TIMEOUT = 600.0


class AzureBlobLake(ObjectStoreLake):
    """Lake in a blob container (AZURE_CONTAINER) under AZURE_PREFIX, same relative paths."""

    container: str
    connection_string: str | None = None
    account: str | None = None

    _client: ContainerClient | None = PrivateAttr(default=None)

    def client(self) -> ContainerClient:
        if self._client is None:
            options: dict[str, Any] = {
                "max_block_size": BLOCK_SIZE,
                "max_single_put_size": SINGLE_PUT,
            }
            if self.connection_string:
                service = BlobServiceClient.from_connection_string(
                    self.connection_string, **options
                )
            elif self.account:
                from azure.identity import DefaultAzureCredential

                service = BlobServiceClient(
                    account_url=f"https://{self.account}.blob.core.windows.net",
                    credential=DefaultAzureCredential(),
                    **options,
                )
            else:
                raise ValueError("AzureBlobLake needs a connection string or an account name")
            self._client = service.get_container_client(self.container)
        return self._client

    def _blob(self, path: str):
        return self.client().get_blob_client(self.key(path))

    def uri(self, path: str) -> str:
        return self._blob(path).url

    def version(self, path: str) -> str | None:
        try:
            return self._blob(path).get_blob_properties().etag
        except ResourceNotFoundError:
            return None

    def _unchanged_since(self, path: str, seen: str | None | Unlooked = UNLOOKED) -> dict[str, Any]:
        """The write's condition: the blob this run saw is still there, or still none is."""
        etag = self.expected(path, seen)
        if etag is None:
            return {"match_condition": MatchConditions.IfMissing}  # If-None-Match: *
        return {"etag": etag, "match_condition": MatchConditions.IfNotModified}

    def put_file(self, local_file: Path, path: str, seen: str | None | Unlooked = UNLOOKED) -> None:
        blob = self._blob(path)
        condition = self._unchanged_since(path, seen)
        try:
            with open(local_file, "rb") as f:
                blob.upload_blob(
                    f,
                    length=local_file.stat().st_size,
                    overwrite=True,
                    content_settings=ContentSettings(content_type=content_type(blob.blob_name)),
                    max_concurrency=CONCURRENCY,
                    **condition,
                )
        except (ResourceModifiedError, ResourceExistsError) as e:
            raise self.conflict(path) from e

    @contextmanager
    def local_copy(self, path: str) -> Iterator[Path]:
        blob = self._blob(path)
        with self.staging_dir() as d:
            local = d / Path(path).name
            try:
                with open(local, "wb") as f:
                    blob.download_blob(max_concurrency=CONCURRENCY).readinto(f)
            except ResourceNotFoundError:
                raise self.missing(path) from None
            yield local

    def move(self, src: str, dst: str) -> None:
        source, target = self._blob(src), self._blob(dst)
        try:
            source_etag = source.get_blob_properties().etag
        except ResourceNotFoundError:
            raise FileNotFoundError(f"{self.uri(src)} is not in the lake") from None
        try:
            # A server-side copy inside the account, conditional on both blobs being the ones
            # this run saw; the target keeps its old bytes until the copy has succeeded.
            copy = target.start_copy_from_url(
                source.url,
                source_etag=source_etag,
                source_match_condition=MatchConditions.IfNotModified,
                **self._unchanged_since(dst),
            )
        except (ResourceModifiedError, ResourceExistsError) as e:
            raise self.conflict(dst) from e
        status, deadline = copy["copy_status"], time.monotonic() + COPY_TIMEOUT
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = target.get_blob_properties().copy.status
        if status != "success":
            raise RuntimeError(f"copying {self.uri(src)} to {self.uri(dst)} ended {status}")
        self.delete(src)

    def exists(self, path: str) -> bool:
        return self._blob(path).exists()

    def delete(self, path: str) -> None:
        try:
            self._blob(path).delete_blob()
        except ResourceNotFoundError:
            pass

    def parquet_footer(self, path: str) -> ParquetFooter:
        blob = self._blob(path)
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            raise self.missing(path) from None

        def tail(n: int) -> bytes:
            return blob.download_blob(
                offset=props.size - n,
                length=n,
                etag=props.etag,
                match_condition=MatchConditions.IfNotModified,
            ).readall()

        return footer_from_tail(props.size, tail, self.uri(path))

    def list_files(self) -> list[tuple[str, int]]:
        start = self.listing_prefix
        return sorted(
            (self.relative(b.name), b.size)
            for b in self.client().list_blobs(name_starts_with=start or None)
        )
