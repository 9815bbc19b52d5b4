"""``build --push``: a model image pushed to a real registry (Debian's ``docker-registry``,
the CNCF distribution server, on 127.0.0.1), found there by its digest; a tag without a registry
and an unreachable registry are clear errors.

The engine and the base image come from ``test_docker_deploy``'s fixtures (they skip, saying
why, where no engine runs).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("docker")

from test_deploy import wait_for
from test_docker_deploy import base_image, docker_client  # noqa: F401

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import BackendError, InvalidArgument

REGISTRY = shutil.which("docker-registry")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry on 127.0.0.1 (the engine trusts loopback registries over plain HTTP)."""
    if REGISTRY is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    folder = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    with open(folder / "registry.log", "wb") as log:
        proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    try:
        address = f"127.0.0.1:{port}"
        wait_for(lambda: _answers(f"http://{address}/v2/"), 20, "the registry to answer")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Hub:  # noqa: F811
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(2).normal(size=(100, 4))
    hub = Hub.init(tmp_path_factory.mktemp("push") / "hub")
    hub.register(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), "fraud", sample=X)
    return hub


def test_a_built_image_is_pushed_and_found_by_its_digest(
    hub: Hub,
    registry: str,
    docker_client,  # noqa: F811
) -> None:
    lines: list[str] = []
    tag = f"{registry}/models/fraud:v0.0.1"
    built = hub.build("fraud@v0.0.1", tag, push=True, progress=lines.append)
    assert built.pushed is not None and built.pushed.startswith(f"{registry}/models/fraud@sha256:")
    assert lines[-1] == f"Pushed {built.pushed}"
    assert any(line.endswith(": Pushed") for line in lines)  # the layers' progress, streamed

    with urllib.request.urlopen(f"http://{registry}/v2/models/fraud/tags/list") as response:
        assert json.load(response)["tags"] == ["v0.0.1"]
    request = urllib.request.Request(
        f"http://{registry}/v2/models/fraud/manifests/v0.0.1",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.headers["Docker-Content-Digest"] == built.pushed.partition("@")[2]
    docker_client.images.remove(tag)


def test_push_mistakes_are_clear(
    hub: Hub,
    docker_client,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(InvalidArgument, match="The tag fraud-local:v1 names no registry"):
        hub.build("fraud@v0.0.1", "fraud-local:v1", push=True)
    docker_client.images.remove("fraud-local:v1")

    nowhere = f"127.0.0.1:{_free_port()}/fraud:v0.0.1"  # nothing listens there
    with pytest.raises(BackendError, match=f"Pushing {nowhere} failed"):
        hub.build("fraud@v0.0.1", nowhere, push=True)

    from jupyter_modelhub import cli

    code = cli.main(["--hub", str(hub.path), "build", "fraud@v0.0.1", "--tag", nowhere, "--push"])
    out, err = capsys.readouterr()
    assert code == 2 and f"Pushing {nowhere} failed" in out + err and "Traceback" not in out + err
    docker_client.images.remove(nowhere)
