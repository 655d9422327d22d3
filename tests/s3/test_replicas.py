"""Black-box: two or three server processes on one bucket, no shared volume (SPEC §9).

Each test starts real servers with STORAGE_URL on a fresh bucket of a real SeaweedFS and
talks HTTP to them, checking each guarantee of §4 and §8 across replicas."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import ROOT, ServerProcess, free_port

from release_server.storage.s3 import S3Storage
from s3.conftest import COMMAND, PREFIX, StartReplicas
from s3.weed import Weed

MiB = 1 << 20


def put(server: ServerProcess, name: str, data: bytes, overwrite: bool = False) -> int:
    params = {"overwrite": "true"} if overwrite else {}
    answer = requests.put(f"{server.url}/assets/{name}", data=data, headers=server.auth(),
                          params=params, timeout=60)  # fmt: skip
    return answer.status_code


def names(server: ServerProcess) -> list[str]:
    answer = requests.get(f"{server.url}/packages", timeout=10)
    assert answer.status_code == 200, answer.text
    return [p["name"] for p in answer.json()]


def test_a_change_through_one_replica_shows_through_the_others_within_a_second(
    start_replicas: StartReplicas,
) -> None:
    one, two, three = start_replicas(3)
    for server in (two, three):  # each has a listing cached before the change
        assert names(server) == []
        assert requests.get(f"{server.url}/latest", timeout=10).json()["assets"] == []
    assert put(one, "tool-1.0.zip", b"one") == 201
    time.sleep(1.0)
    for server in (two, three):
        assert names(server) == ["tool-1.0.zip"]
        assets = requests.get(f"{server.url}/latest", timeout=10).json()["assets"]
        assert [a["name"] for a in assets] == ["tool-1.0.zip"]
        assert requests.get(f"{server.url}/assets/tool-1.0.zip", timeout=10).content == b"one"
    assert requests.delete(f"{two.url}/assets/tool-1.0.zip", headers=two.auth(), timeout=10)
    time.sleep(1.0)
    assert names(one) == names(three) == []


def test_releases_written_through_one_replica_show_through_the_others_within_a_second(
    start_replicas: StartReplicas,
) -> None:
    """The repository caches of every replica revalidate against the bucket's stamp."""
    one, two = start_replicas(2)

    def tags(server: ServerProcess) -> list[str]:
        answer = requests.get(f"{server.url}/repos/acme/tool/releases", timeout=10)
        return [r["tag_name"] for r in answer.json()] if answer.status_code == 200 else []

    def publish(server: ServerProcess, tag: str, name: str) -> None:
        url = f"{server.url}/acme/tool/releases/download/{tag}/{name}"
        assert requests.put(url, data=tag.encode(), headers=server.auth(), timeout=10).ok

    publish(one, "v1.0", "tool-1.0.zip")
    time.sleep(1.0)
    assert tags(two) == ["v1.0"]  # now cached on two
    publish(one, "v1.1", "tool-1.1.zip")
    publish(one, "v1.0", "notes.txt")  # an asset added to a release two has cached
    time.sleep(1.0)
    assert tags(two) == ["v1.1", "v1.0"]
    release = requests.get(f"{two.url}/repos/acme/tool/releases/tags/v1.0", timeout=10).json()
    assert sorted(a["name"] for a in release["assets"]) == ["notes.txt", "tool-1.0.zip"]
    index = requests.get(f"{two.url}/", timeout=10).json()
    assert [r["full_name"] for r in index["repositories"]] == ["acme/tool"]


def test_racing_creates_through_different_replicas_have_one_winner(
    start_replicas: StartReplicas,
) -> None:
    servers = start_replicas(3)
    for round_number in range(3):
        name = f"race-{round_number}.zip"

        def attempt(number: int, name: str = name) -> tuple[int, bytes]:
            body = b"racer %d " % number * 1000
            return put(servers[number % 3], name, body), body

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(attempt, range(12)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [409] * 11, statuses
        winner = next(body for status, body in results if status == 201)
        for server in servers:
            assert requests.get(f"{server.url}/assets/{name}", timeout=10).content == winner


def test_a_download_in_flight_keeps_its_version_through_replace_and_delete(
    start_replicas: StartReplicas,
) -> None:
    one, two, three = start_replicas(3)
    old, new = os.urandom(24 * MiB), os.urandom(24 * MiB)
    assert put(one, "big.bin", old) == 201
    with requests.get(f"{two.url}/assets/big.bin", stream=True, timeout=60) as download:
        chunks = download.iter_content(MiB)
        received = [next(chunks)]
        assert put(three, "big.bin", new, overwrite=True) == 200
        assert requests.get(f"{one.url}/assets/big.bin", timeout=60).content == new
        deleted = requests.delete(f"{one.url}/assets/big.bin", headers=one.auth(), timeout=10)
        assert deleted.status_code == 204
        received.extend(chunks)
    assert hashlib.sha256(b"".join(received)).digest() == hashlib.sha256(old).digest()
    assert requests.get(f"{three.url}/assets/big.bin", timeout=10).status_code == 404


def test_replace_is_never_torn_across_replicas(start_replicas: StartReplicas) -> None:
    one, two = start_replicas(2)
    versions = [os.urandom(3 * MiB + 17), os.urandom(9 * MiB + 5)]  # one PUT; several parts
    digests = {hashlib.sha256(v).hexdigest() for v in versions}
    assert put(one, "app.zip", versions[0]) == 201
    stop = threading.Event()

    def replace() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            assert put((one, two)[number % 2], "app.zip", versions[number % 2], True) == 200

    writer = threading.Thread(target=replace)
    writer.start()
    try:
        seen = set()
        for number in range(16):
            answer = requests.get(f"{(one, two)[number % 2].url}/assets/app.zip", timeout=60)
            digest = hashlib.sha256(answer.content).hexdigest()
            assert digest in digests and answer.headers["ETag"].strip('"') == digest
            seen.add(digest)
    finally:
        stop.set()
        writer.join()


def test_retention_across_replicas_keeps_exactly_the_newest(
    start_replicas: StartReplicas,
) -> None:
    servers = start_replicas(3, env={"MAX_PACKAGES": "3"})

    def upload(number: int) -> int:
        return put(servers[number % 3], f"build-{number:02d}.bin", b"%d" % number)

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(upload, range(12))) == {201}
    kept = names(servers[0])
    assert len(kept) == 3, kept
    for server in servers:
        time.sleep(0.6)
        assert names(server) == kept
    # sequential uploads then: the newest three, exactly
    for number in range(20, 25):
        assert put(servers[number % 3], f"build-{number:02d}.bin", b"x") == 201
    assert sorted(names(servers[1])) == ["build-22.bin", "build-23.bin", "build-24.bin"]


def test_download_counts_add_up_across_replicas(start_replicas: StartReplicas) -> None:
    servers = start_replicas(3)
    assert put(servers[0], "counted.zip", b"count me") == 201
    for number in range(12):
        answer = requests.get(f"{servers[number % 3].url}/assets/counted.zip", timeout=10)
        assert answer.content == b"count me"
    deadline = time.monotonic() + 15  # counts may lag by seconds (SPEC §3)
    while True:
        listed = [requests.get(f"{s.url}/packages", timeout=10).json() for s in servers]
        counts = [packages[0]["downloads"] if packages else None for packages in listed]
        if counts == [12, 12, 12] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counts == [12, 12, 12]
    latest = requests.get(f"{servers[1].url}/latest", timeout=10).json()
    assert latest["assets"][0]["download_count"] == 12


def test_ranges_are_served_from_the_bucket(start_replicas: StartReplicas) -> None:
    one, two = start_replicas(2)
    data = os.urandom(20 * MiB + 3)
    assert put(one, "ranged.bin", data) == 201
    for header, first, last in (
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        (f"bytes={12 * MiB}-{13 * MiB + 7}", 12 * MiB, 13 * MiB + 7),
        ("bytes=-10", len(data) - 10, len(data) - 1),
        (f"bytes={len(data) - 5}-", len(data) - 5, len(data) - 1),
    ):
        answer = requests.get(f"{two.url}/assets/ranged.bin", headers={"Range": header},
                              timeout=30)  # fmt: skip
        assert answer.status_code == 206, header
        assert answer.content == data[first : last + 1], header
        assert answer.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    beyond = {"Range": f"bytes={len(data)}-"}
    answer = requests.get(f"{two.url}/assets/ranged.bin", headers=beyond, timeout=10)
    assert answer.status_code == 416


def test_readyz_fails_when_the_bucket_is_gone(
    start_replicas: StartReplicas, weed: Weed, s3_bucket: str
) -> None:
    (server,) = start_replicas(1)
    assert put(server, "a.zip", b"a") == 201
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    listed = weed.client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    for item in listed:
        weed.client.delete_object(Bucket=s3_bucket, Key=item["Key"])
    weed.client.delete_bucket(Bucket=s3_bucket)
    answer = requests.get(f"{server.url}/readyz", timeout=30)
    assert answer.status_code == 503
    assert s3_bucket in answer.text
    download = requests.get(f"{server.url}/assets/a.zip", timeout=30)
    assert download.status_code == 503 and "Traceback" not in download.text


@pytest.mark.parametrize("where", ["missing bucket", "no engine"])
def test_an_unusable_bucket_stops_start_up_with_one_line(weed: Weed, where: str) -> None:
    env = {**os.environ, **weed.env, "STORAGE_URL": "s3://no-such-bucket-here/x"}
    if where == "no engine":
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", AWS_MAX_ATTEMPTS="1")
    done = subprocess.run([*COMMAND, "--port", "0"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("release-server: error: STORAGE_URL:"), done.stderr
    assert "no-such-bucket-here" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_killed_upload_leaves_no_visible_object(
    start_replicas: StartReplicas, weed: Weed, s3_bucket: str
) -> None:
    one, two = start_replicas(2)
    with socket.create_connection(("127.0.0.1", one.port)) as sock:
        sock.sendall(
            f"PUT /assets/killed.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {one.token}"
            f"\r\nContent-Length: {64 * MiB}\r\n\r\n".encode()
        )
        piece = os.urandom(MiB)
        for _ in range(24):
            sock.sendall(piece)
        time.sleep(0.5)  # parts on their way to the bucket
        one.proc.send_signal(signal.SIGKILL)
        one.proc.wait(10)
    assert names(two) == []
    assert requests.get(f"{two.url}/assets/killed.bin", timeout=10).status_code == 404
    uploads = weed.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert len(uploads) == 1  # invisible; a sweep of a later start aborts it once stale
    storage = S3Storage(f"s3://{s3_bucket}/{PREFIX}", weed.make_client())
    assert storage.remove_stale_uploads() == []  # not stale yet: it may be alive
    storage.stale_upload = 0
    assert len(storage.remove_stale_uploads()) == 1
    assert weed.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert put(two, "killed.bin", b"after") == 201


def test_the_s3_pyz_and_the_source_tree_share_a_bucket(
    start_replicas: StartReplicas, s3_pyz_command: list[str], tmp_path
) -> None:
    (zipped,) = start_replicas(1, env={"TMPDIR": str(tmp_path)}, command=s3_pyz_command)
    (source,) = start_replicas(1)
    data = os.urandom(7 * MiB)  # several parts
    assert put(zipped, "from-pyz.bin", data) == 201
    assert put(source, "from-source.zip", b"source") == 201
    time.sleep(1.0)
    for server in (zipped, source):
        assert sorted(names(server)) == ["from-pyz.bin", "from-source.zip"]
    assert requests.get(f"{source.url}/assets/from-pyz.bin", timeout=30).content == data
    assert requests.get(f"{zipped.url}/assets/from-source.zip", timeout=30).content == b"source"
    assert requests.get(f"{zipped.url}/readyz", timeout=10).status_code == 200
    assert "Traceback" not in zipped.log


def test_the_plain_pyz_says_which_build_has_s3(server_command: list[str]) -> None:
    if "-S" not in server_command:
        pytest.skip("the source tree runs with boto3 installed")
    env = {**os.environ, "STORAGE_URL": "s3://some-bucket/x"}
    done = subprocess.run([*server_command, "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("release-server: error: STORAGE_URL: a bucket needs boto3")
    assert "release-server-s3.pyz" in done.stderr
