"""One filesystem abstraction for the lake: a local directory or an s3:// URI (MinIO/S3), with atomic writes."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clinops.errors import ClinopsError

# Readers skip names starting with these (pyarrow datasets do the same), so in-flight temp files stay unseen.
HIDDEN_PREFIXES = (".", "_")


class LakeError(ClinopsError):
    """The lake cannot be reached or an object in it cannot be read."""


def _s3_filesystem() -> pafs.S3FileSystem:
    endpoint = os.environ.get("CLINOPS_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, object] = {"region": os.environ.get("AWS_REGION", "us-east-1")}
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "http")
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(
            access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        )
    return pafs.S3FileSystem(**options)


class Lake:
    """Keys are '/'-separated paths below the lake root, e.g. ``silver/vitals/date=2026-01-01/part-0.parquet``.

    Writes are atomic for every reader: locally a hidden temp file is renamed into place (rename is atomic on
    POSIX); on S3 an object only becomes visible once its upload completes.
    """

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        self.root = text.rstrip("/")
        if text.startswith("s3://"):
            self.fs: pafs.FileSystem = _s3_filesystem()
            self._base = text.removeprefix("s3://").rstrip("/")
            self.is_local = False
        elif "://" in text and not text.startswith("file://"):
            raise LakeError(f"unsupported lake URI {text!r}: use a local directory or s3://bucket/prefix")
        else:
            local = Path(text.removeprefix("file://")).expanduser().resolve()
            self.fs = pafs.LocalFileSystem()
            self._base = local.as_posix()
            self.is_local = True

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    def path(self, key: str) -> str:
        return f"{self._base}/{key.strip('/')}" if key else self._base

    def uri(self, key: str = "") -> str:
        return self.path(key) if self.is_local else f"s3://{self.path(key)}"

    def write_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        parent, _, name = target.rpartition("/")
        if not self.is_local:
            with self.fs.open_output_stream(target) as out:
                out.write(data)
            return
        self.fs.create_dir(parent, recursive=True)
        temp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(temp) as out:
                out.write(data)
            self.fs.move(temp, target)
        except BaseException:
            self._remove_quietly(temp)
            raise

    def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_file(path)

    def read_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(key)) as source:
                return bytes(source.read())
        except FileNotFoundError as exc:
            raise LakeError(f"no object {key!r} in lake {self.root}") from exc

    def keys(self, prefix: str, suffix: str = "") -> list[str]:
        """Keys of the visible objects below ``prefix``, sorted (hidden temp files excluded)."""
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        keys = []
        base_len = len(self._base) + 1
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or info.base_name.startswith(HIDDEN_PREFIXES):
                continue
            if info.path.endswith(suffix):
                keys.append(info.path[base_len:])
        return sorted(keys)

    def write_parquet(self, key: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self.write_bytes(key, buffer.getvalue())

    def read_parquet(self, prefix: str, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        """All Parquet objects below ``prefix`` as one table (as ``schema`` when given); none is an error.

        Objects are ``*.parquet`` or the part files a Flink filesystem sink commits, which have no extension.
        """
        keys = [k for k in self.keys(prefix) if k.endswith(".parquet") or "." not in k.rpartition("/")[2]]
        if not keys:
            raise LakeError(f"no Parquet data under {self.uri(prefix)}")
        dataset = ds.dataset([self.path(k) for k in keys], filesystem=self.fs, format="parquet", schema=schema)
        return dataset.to_table(columns=columns)


LAKE_SCHEME = "lake://"


def read_table_uri(uri: str, lake_root: str) -> pa.Table:
    """A Parquet table named by ``lake://<key>`` (relative to the configured lake), ``s3://bucket/key`` or a path.

    ``lake://`` keeps resource YAML portable: the same TrainingJob reads the local lake on a laptop and the
    cluster's bucket on Kubernetes.
    """
    if uri.startswith(LAKE_SCHEME):
        return Lake(lake_root).read_parquet(uri.removeprefix(LAKE_SCHEME))
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return Lake(f"s3://{bucket}").read_parquet(key)
    return Lake(uri).read_parquet("")
