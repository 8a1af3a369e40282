"""Where tenants' uploaded photos are kept: one interface over a local folder or an S3 store.

`RELAIS_UPLOADS_URL` chooses: a folder (default `var/uploads`), or `s3://bucket/prefix` for
an S3-compatible store, which several gateways share (`RELAIS_UPLOADS_S3_ENDPOINT` for MinIO,
Scaleway, OVH…; credentials from the usual `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).

A key is `<owner>/<name>`: the owner is a web-chat session's pseudonym (16 hex digits), the
name random. Nothing else is accepted as a key, so no path ever leaves the store's folder.
`sweep_uploads` deletes what was never attached to a message; `bot.gdpr` deletes what was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from sqlalchemy import select

from bot.storage.models import Attachment

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from bot.storage.db import Database

log = logging.getLogger(__name__)

MEDIA_PREFIX = "/channels/webchat/media/"  # what an upload's media URL starts with
KEY = re.compile(r"([0-9a-f]{16})/([0-9a-f]{32}\.(?:jpg|png|gif|webp))")
OWNER = re.compile(r"[0-9a-f]{16}")


def key_of(url: object) -> str | None:
    """The store key behind one of our media URLs (`/channels/webchat/media/<key>`)."""
    if not isinstance(url, str) or not url.startswith(MEDIA_PREFIX):
        return None
    key = url[len(MEDIA_PREFIX) :]
    return key if KEY.fullmatch(key) else None


def _check(key: str) -> str:
    if not KEY.fullmatch(key):
        raise ValueError("not an upload key")
    return key


def _check_prefix(prefix: str) -> str:
    """ "" (everything) or "<owner>/" (one session's)."""
    if prefix and not (prefix.endswith("/") and OWNER.fullmatch(prefix[:-1])):
        raise ValueError("not an upload prefix")
    return prefix


@dataclass(frozen=True, slots=True)
class Stored:
    key: str
    size: int
    modified: datetime


class UploadStore:
    """The interface both stores share; every method may be called from the event loop."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> bytes:
        """The upload's bytes; `LookupError` if there is none."""
        raise NotImplementedError

    async def delete(self, keys: Iterable[str]) -> int:
        """Delete these uploads (missing ones are no error); how many were asked for."""
        raise NotImplementedError

    async def list(self, prefix: str = "") -> list[Stored]:
        """Every upload, or one owner's (prefix "<owner>/")."""
        raise NotImplementedError

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every upload of one owner."""
        if not _check_prefix(prefix):
            raise ValueError("refusing to delete every upload at once")
        return await self.delete([s.key for s in await self.list(prefix)])

    async def close(self) -> None:
        return None


class LocalUploads(UploadStore):
    """A folder on this machine: `<root>/<owner>/<name>` (file I/O in a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / _check(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)  # never a half-written photo under its name

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise LookupError("no such upload") from exc

    async def delete(self, keys: Iterable[str]) -> int:
        paths = [self.path(k) for k in keys]

        def remove() -> None:
            for p in paths:
                p.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # not empty: other uploads remain
                    p.parent.rmdir()

        await asyncio.to_thread(remove)
        return len(paths)

    async def list(self, prefix: str = "") -> list[Stored]:
        _check_prefix(prefix)
        folder = self.root / prefix

        def scan() -> list[Stored]:
            if not folder.is_dir():
                return []
            found = []
            for path in folder.rglob("*"):
                key = path.relative_to(self.root).as_posix()
                if path.is_file() and KEY.fullmatch(key):
                    st = path.stat()
                    found.append(Stored(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
            return found

        return await asyncio.to_thread(scan)


class S3Uploads(UploadStore):
    """An S3-compatible bucket, through aiobotocore (no blocking call in the event loop)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                stack = contextlib.AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3", endpoint_url=self.endpoint_url, region_name=self.region
                    )
                )
                self._stack = stack
            return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        s3 = await self._s3()
        await s3.put_object(
            Bucket=self.bucket, Key=self.prefix + _check(key), Body=data, ContentType=content_type
        )

    async def get(self, key: str) -> bytes:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + _check(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise LookupError("no such upload") from exc
            raise
        async with response["Body"] as body:
            return bytes(await body.read())

    async def delete(self, keys: Iterable[str]) -> int:
        names = [self.prefix + _check(k) for k in keys]
        s3 = await self._s3()
        for start in range(0, len(names), 1000):  # DeleteObjects takes up to 1000 keys
            chunk = names[start : start + 1000]
            await s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": n} for n in chunk], "Quiet": True},
            )
        return len(names)

    async def list(self, prefix: str = "") -> list[Stored]:
        s3 = await self._s3()
        found = []
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self.prefix + _check_prefix(prefix)
        ):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                if KEY.fullmatch(key):
                    found.append(Stored(key, int(item["Size"]), item["LastModified"]))
        return found

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = self._client = None


def build_upload_store(settings: Settings) -> UploadStore:
    url = settings.uploads_url
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError("RELAIS_UPLOADS_URL: s3://<bucket>/<prefix>")
        return S3Uploads(
            parts.netloc,
            parts.path,
            endpoint_url=settings.uploads_s3_endpoint,
            region=settings.uploads_s3_region,
        )
    return LocalUploads(Path(url.removeprefix("file://").removeprefix("file:")))


async def sweep_uploads(
    db: Database, store: UploadStore, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Delete every upload older than `older_than` that no message holds; how many."""
    cutoff = (now or datetime.now(UTC)) - older_than
    old = [s.key for s in await store.list() if s.modified <= cutoff]
    orphans: list[str] = []
    for start in range(0, len(old), 500):
        chunk = old[start : start + 500]
        async with db.session() as s:
            held = set(
                (
                    await s.execute(
                        select(Attachment.url).where(
                            Attachment.url.in_([MEDIA_PREFIX + k for k in chunk])
                        )
                    )
                ).scalars()
            )
        orphans += [k for k in chunk if MEDIA_PREFIX + k not in held]
    if orphans:
        await store.delete(orphans)
        log.info("uploads: %s never attached to a message, deleted", len(orphans))
    return len(orphans)
