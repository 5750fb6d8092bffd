"""Shared fixtures: the real sample data (DATA.md) and temporary stores."""

import shutil

import pytest

from astrokit.datasets import get_path, sample_frames_dir
from astrokit.store import Store


@pytest.fixture(scope="session")
def sample_frames():
    """Folder with the real GOTO pair and the raw SAAO frame (fetched on first use)."""
    return sample_frames_dir()


@pytest.fixture()
def tmp_store(tmp_path):
    """An empty store in a temporary folder (the folder exists: commands other than run/ingest refuse a missing one)."""
    (tmp_path / "store").mkdir()
    return Store(tmp_path / "store")


@pytest.fixture()
def input_folder(tmp_path, sample_frames):
    """A copy of the sample frames plus a corrupt FITS file and a non-FITS file, as a user's input folder."""
    folder = tmp_path / "input"
    shutil.copytree(sample_frames, folder)
    (folder / "notes.txt").write_text("observing log, not an image\n")
    good = (folder / "goto_1.fits").read_bytes()
    (folder / "broken.fits").write_bytes(good[: len(good) // 3])  # truncated mid-data
    return folder


@pytest.fixture(scope="session")
def goto_paths():
    """Paths of the real GOTO reference (1.fits) and science (2.fits) frames."""
    return get_path("goto_reference"), get_path("goto_science")


class LocalServer:
    """A server process on 127.0.0.1 (moto's S3 server, a TCP forwarder...) that tests start, kill and restart.

    ``argv(port)`` gives its command line; ``start()`` launches it on its port (a free one, kept across
    restarts) and waits until it accepts connections; ``kill()`` ends it with SIGKILL, as a crash would.
    """

    def __init__(self, argv, log_path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.argv, self.log_path, self.proc = argv, log_path, None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        import socket
        import subprocess
        import time

        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv(self.port), stdout=log, stderr=log)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.argv(self.port)[:2]} did not start on port {self.port}; see {self.log_path}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """URL of moto's standalone S3 server (from PyPI) on 127.0.0.1, shared by the session (tests use own buckets)."""
    import sys
    from pathlib import Path

    pytest.importorskip("moto")
    moto = str(Path(sys.executable).with_name("moto_server"))
    server = LocalServer(lambda port: [moto, "-H", "127.0.0.1", "-p", str(port)],
                         tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server.url
    server.stop()


@pytest.fixture()
def local_server(tmp_path):
    """Factory ``local_server(argv)`` of started `LocalServer` processes, all killed after the test."""
    servers = []

    def start(argv):
        servers.append(LocalServer(argv, tmp_path / f"server-{len(servers)}.log").start())
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


@pytest.fixture()
def s3_env(s3_endpoint, monkeypatch, tmp_path):
    """Point boto3, pyarrow and notebook kernels at the moto server (test credentials, own S3 cache folder)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("ASTROKIT_S3_CACHE", str(tmp_path / "s3cache"))
    return s3_endpoint


@pytest.fixture()
def s3_bucket(s3_env):
    """A new, empty bucket on the moto server; returns its name."""
    import time

    import boto3

    name = f"test-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=name)
    return name
