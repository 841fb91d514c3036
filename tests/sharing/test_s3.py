"""Serving share tables from object storage (S3): the same server code over delta-rs's object store.

The test starts its own S3-compatible server (moto, on loopback, in-process) unless
``LAWLAKE_TEST_S3_ENDPOINT`` names another one (e.g. MinIO). Credentials default to
moto's anything-goes ``test``/``test``.
"""

from __future__ import annotations

import os
import uuid

import delta_sharing
import pandas as pd
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable, write_deltalake

from lawlake import tables
from lawlake.sharing.access import write_profile
from lawlake.sharing.server import start_in_thread


@pytest.fixture(scope="module")
def endpoint():
    """An S3 endpoint: the configured one, or a moto server started here on a free loopback port."""
    configured = os.environ.get("LAWLAKE_TEST_S3_ENDPOINT")
    if configured:
        yield configured
        return
    import subprocess
    import sys

    from ..servers import free_port, start_listening

    port = free_port()
    # A process of its own: delta-rs holds the GIL in some calls (is_deltatable), which would
    # deadlock against a moto server running in a thread of this process.
    server = start_listening(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, name="the moto S3 server", timeout=60,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def s3_root(lake_settings, endpoint):
    """The lake's share tables copied to a fresh bucket; the root URI and delta-rs storage options."""
    ENDPOINT = endpoint
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID", "test"), os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    options = {
        "AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    bucket = f"lawlake-{uuid.uuid4().hex[:12]}"
    fs = pafs.S3FileSystem(endpoint_override=ENDPOINT, access_key=key, secret_key=secret, region="us-east-1", scheme=ENDPOINT.split("://")[0], allow_bucket_creation=True)
    fs.create_dir(bucket)
    root = f"s3://{bucket}/lake"
    for name in ("share.hz_procuratorate.case_chain", "share.hz_procuratorate.time_limit_warnings"):
        data = DeltaTable(str(tables.location(lake_settings.lake, name))).to_pyarrow_table()
        write_deltalake(f"{root}/{name.replace('.', '/')}", data, storage_options=options)
    return root, options


def test_the_client_reads_share_tables_stored_in_s3(lake_settings, s3_root, tmp_path):
    root, options = s3_root
    with start_in_thread(lake_settings, root=root, storage_options=options) as srv:
        profile = write_profile(lake_settings, "hz_procuratorate", tmp_path / "hz.share", endpoint=srv.endpoint)
        client = delta_sharing.SharingClient(str(profile))
        assert [t.name for t in client.list_all_tables()] == ["case_chain", "time_limit_warnings"]
        for table in ("case_chain", "time_limit_warnings"):
            pulled = delta_sharing.load_as_pandas(f"{profile}#hz_procuratorate.justice.{table}")
            local = DeltaTable(str(tables.location(lake_settings.lake, f"share.hz_procuratorate.{table}"))).to_pandas()
            cols = list(local.columns)
            pd.testing.assert_frame_equal(
                pulled.sort_values(cols, na_position="first").reset_index(drop=True), local.sort_values(cols, na_position="first").reset_index(drop=True)
            )
