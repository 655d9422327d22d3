"""The storage contract: what every backend behind the seam must do, in-process.

Parametrized over the backends (the directory, and a bucket on a real SeaweedFS), as
Hypercorn runs one suite over its workers. Routes and services rely on exactly these
properties.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from release_server.errors import AlreadyExists, Conflict, NotFound
from release_server.package import Package
from release_server.storage import DirectoryStorage, Storage

pytestmark = pytest.mark.anyio

BACKENDS = ("directory", "s3")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    backend: Storage
    if request.param == "s3":
        from release_server.storage.s3 import S3Storage

        weed = request.getfixturevalue("weed")
        backend = S3Storage(f"s3://{weed.new_bucket()}/packages", weed.make_client())
    else:
        backend = DirectoryStorage(tmp_path / "storage")
    backend.prepare()
    yield backend


async def put(storage: Storage, key: str, data: bytes, overwrite: bool = False) -> Package:
    writer = await storage.begin(key)
    try:
        await writer.write(data)
        package, _ = await storage.publish(writer, hashlib.sha256(data).hexdigest(), overwrite)
    finally:
        await writer.discard()
    return package


async def read_all(storage: Storage, key: str) -> bytes:
    reader = await storage.open(key)
    try:
        return await reader.read(0, reader.package.size + 10)
    finally:
        await reader.close()


async def names(storage: Storage, release: str = "") -> list[str]:
    return [p.name for p in (await storage.listing(release)).packages]


async def test_a_new_storage_is_empty_and_ready(storage: Storage) -> None:
    assert await names(storage) == []
    assert await storage.problem() is None


async def test_published_objects_are_listed_newest_first_with_digest(storage: Storage) -> None:
    first = await put(storage, "a.zip", b"first")
    second = await put(storage, "b.zip", b"second!")
    assert second.mtime_ns >= first.mtime_ns
    listing = await storage.listing()
    assert [(p.name, p.size, p.sha256) for p in listing.packages] == [
        ("b.zip", 7, hashlib.sha256(b"second!").hexdigest()),
        ("a.zip", 5, hashlib.sha256(b"first").hexdigest()),
    ]
    assert await read_all(storage, "a.zip") == b"first"
    assert await storage.exists("a.zip") and not await storage.exists("c.zip")


async def test_the_listing_version_changes_with_the_content(storage: Storage) -> None:
    before = (await storage.listing()).version
    await put(storage, "a.zip", b"x")
    after = (await storage.listing()).version
    assert before != after


async def test_create_only_refuses_a_taken_key_and_keeps_the_original(storage: Storage) -> None:
    await put(storage, "a.zip", b"original")
    with pytest.raises(AlreadyExists):
        await put(storage, "a.zip", b"intruder")
    assert await read_all(storage, "a.zip") == b"original"
    assert await names(storage) == ["a.zip"]


async def test_racing_creates_have_exactly_one_winner(storage: Storage) -> None:
    outcomes: list[str] = []

    async def attempt(data: bytes) -> None:
        try:
            await put(storage, "race.zip", data)
            outcomes.append("won")
        except AlreadyExists:
            outcomes.append("lost")

    async with anyio.create_task_group() as group:
        for number in range(8):
            group.start_soon(attempt, b"racer %d" % number)
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert (await read_all(storage, "race.zip")).startswith(b"racer ")


async def test_overwrite_replaces_and_says_so(storage: Storage) -> None:
    await put(storage, "a.zip", b"old")
    writer = await storage.begin("a.zip")
    await writer.write(b"new bytes")
    package, replaced = await storage.publish(
        writer, hashlib.sha256(b"new bytes").hexdigest(), True
    )
    assert replaced and package.size == 9
    assert await read_all(storage, "a.zip") == b"new bytes"


async def test_a_pinned_reader_survives_replace_and_delete(storage: Storage) -> None:
    await put(storage, "a.zip", b"version one")
    reader = await storage.open("a.zip")
    try:
        await put(storage, "a.zip", b"version two, longer", overwrite=True)
        assert await reader.read(0, 100) == b"version one"
        await storage.delete("a.zip")
        assert await reader.read(8, 100) == b"one"
        assert reader.package.size == 11
    finally:
        await reader.close()
        await reader.close()  # twice is fine


async def test_a_discarded_upload_leaves_nothing(storage: Storage) -> None:
    writer = await storage.begin("gone.zip")
    await writer.write(b"partial")
    await writer.discard()
    await writer.discard()
    assert await names(storage) == []
    assert not await storage.exists("gone.zip")
    assert storage.remove_stale_uploads() == []


async def test_delete_removes_and_missing_keys_are_not_found(storage: Storage) -> None:
    await put(storage, "a.zip", b"x")
    deleted = await storage.delete("a.zip")
    assert deleted.name == "a.zip" and deleted.size == 1
    assert await names(storage) == []
    for call in (storage.delete, storage.open):
        with pytest.raises(NotFound):
            await call("a.zip")


async def test_downloads_are_counted_per_version(storage: Storage) -> None:
    await put(storage, "a.zip", b"x")
    reader = await storage.open("a.zip")
    await reader.close()
    for _ in range(3):
        await storage.count_download("a.zip", reader.version)
    with anyio.fail_after(5):  # counts may lag by a second or so
        while (await storage.listing()).packages[0].downloads != 3:
            await anyio.sleep(0.1)
    await put(storage, "a.zip", b"y", overwrite=True)
    assert (await storage.listing()).packages[0].downloads == 0


async def test_releases_below_the_root_are_separate(storage: Storage) -> None:
    await put(storage, "root.zip", b"r")
    await put(storage, "acme/tool/v1.0.0/tool-1.0.0.zip", b"t")
    assert await names(storage) == ["root.zip"]
    assert await names(storage, "acme/tool/v1.0.0") == ["tool-1.0.0.zip"]
    assert await names(storage, "acme/tool/v2.0.0") == []
    assert await read_all(storage, "acme/tool/v1.0.0/tool-1.0.0.zip") == b"t"


async def test_upload_time_is_the_time_of_publishing(storage: Storage) -> None:
    """Retention orders by upload time, so it must follow the order uploads were
    published in, not the order their bytes finished arriving."""
    early = await storage.begin("early.zip")
    await early.write(b"written first")
    late = await storage.begin("late.zip")
    await late.write(b"written second")
    await anyio.sleep(0.01)
    second, _ = await storage.publish(late, hashlib.sha256(b"written second").hexdigest(), False)
    await anyio.sleep(0.01)
    first, _ = await storage.publish(early, hashlib.sha256(b"written first").hexdigest(), False)
    assert first.mtime_ns > second.mtime_ns
    assert await names(storage) == ["early.zip", "late.zip"]


async def test_release_levels_and_metadata(storage: Storage) -> None:
    assert await storage.children("") == []
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "one"}')
    await put(storage, "acme/tool/v1.1.0/tool-1.1.0.zip", b"t")
    await put(storage, "root.zip", b"r")
    assert await storage.children("") == ["acme"]
    assert await storage.children("acme") == ["tool"]
    assert await storage.children("acme/tool") == ["v1.0.0", "v1.1.0"]
    assert await storage.children("nobody/here") == []
    assert await storage.read_meta("acme/tool/v1.0.0") == b'{"name": "one"}'
    assert await storage.read_meta("acme/tool/v1.1.0") is None
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "two"}')
    assert await storage.read_meta("acme/tool/v1.0.0") == b'{"name": "two"}'
    assert await names(storage, "acme/tool/v1.0.0") == []  # metadata is not an asset


async def test_removing_a_release_removes_its_empty_levels(storage: Storage) -> None:
    await storage.write_meta("acme/tool/v1.0.0", b"{}")
    await put(storage, "acme/tool/v2.0.0/a.zip", b"a")
    await storage.remove_release("acme/tool/v1.0.0")
    assert await storage.children("acme/tool") == ["v2.0.0"]
    await storage.remove_release("acme/tool/v2.0.0")  # an asset is left: it stays
    assert await storage.children("acme/tool") == ["v2.0.0"]
    await storage.delete("acme/tool/v2.0.0/a.zip")
    await storage.remove_release("acme/tool/v2.0.0")
    assert await storage.children("") == []


async def test_a_level_that_is_a_package_is_a_conflict(storage: Storage) -> None:
    await put(storage, "acme", b"a root package")
    with pytest.raises(Conflict):
        await put(storage, "acme/tool/v1.0.0/a.zip", b"a")
    with pytest.raises(Conflict):
        await storage.write_meta("acme/tool/v1.0.0", b"{}")
    assert (await storage.listing("acme/tool/v1.0.0")).packages == ()
    assert await read_all(storage, "acme") == b"a root package"


async def test_every_write_below_a_repository_changes_its_stamp(storage: Storage) -> None:
    """Whole-repository caches revalidate against the stamp: each write through the seam
    below ``owner/repo`` changes it, reads do not, and another repository's keeps."""
    assert await storage.stamp("acme/tool") == 0
    seen = []

    async def changed() -> None:
        stamp = await storage.stamp("acme/tool")
        assert stamp not in seen, seen
        seen.append(stamp)

    await storage.write_meta("acme/tool/v1.0.0", b"{}")
    await changed()
    other = await storage.stamp("acme/other")
    await put(storage, "acme/tool/v1.0.0/a.zip", b"a")
    await changed()
    await put(storage, "acme/tool/v1.0.0/a.zip", b"b", overwrite=True)
    await changed()
    await storage.listing("acme/tool/v1.0.0")
    await read_all(storage, "acme/tool/v1.0.0/a.zip")
    assert await storage.stamp("acme/tool") == seen[-1]
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "one"}')
    await changed()
    await storage.delete("acme/tool/v1.0.0/a.zip")
    await changed()
    await storage.write_meta("acme/tool/v2.0.0", b"{}")
    await changed()
    await storage.remove_release("acme/tool/v1.0.0")
    await changed()
    assert await storage.stamp("acme/other") == other


async def test_a_whole_repository_is_read_at_once(storage: Storage) -> None:
    """``repository_releases`` gives what ``children``, ``listing`` and ``read_meta`` give
    for each release, and follows every change (the periodic re-read of a repository)."""
    assert await storage.repository_releases("acme/tool") == []
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "one"}')
    await put(storage, "acme/tool/v1.1.0/a.zip", b"a")
    await put(storage, "acme/other/v9.0.0/x.zip", b"x")
    await put(storage, "root.zip", b"r")

    async def read() -> dict[str, tuple[list[str], bytes | None]]:
        entries = await storage.repository_releases("acme/tool")
        assert [e.tag for e in entries] == await storage.children("acme/tool")
        for entry in entries:
            listing = await storage.listing(f"acme/tool/{entry.tag}")
            assert entry.listing.packages == listing.packages
            assert entry.listing.version == listing.version
            assert entry.meta == await storage.read_meta(f"acme/tool/{entry.tag}")
        return {e.tag: ([p.name for p in e.listing.packages], e.meta) for e in entries}

    assert await read() == {"v1.0.0": ([], b'{"name": "one"}'), "v1.1.0": (["a.zip"], None)}
    await storage.stamp("acme/tool")  # what was read for a stamp must not hide a write
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "two"}')
    await put(storage, "acme/tool/v1.0.0/b.zip", b"b")
    await put(storage, "acme/tool/v1.1.0/a.zip", b"aa", overwrite=True)
    assert await read() == {"v1.0.0": (["b.zip"], b'{"name": "two"}'), "v1.1.0": (["a.zip"], None)}
    assert (await storage.repository_releases("acme/tool"))[1].listing.packages[0].size == 2
    await storage.delete("acme/tool/v1.1.0/a.zip")
    await storage.remove_release("acme/tool/v1.1.0")
    await storage.remove_release("acme/tool/v1.0.0")
    assert await read() == {"v1.0.0": (["b.zip"], None)}


async def test_a_whole_repository_read_counts_downloads(storage: Storage) -> None:
    await put(storage, "acme/tool/v1.0.0/a.zip", b"a")
    await put(storage, "acme/tool/v2.0.0/b.zip", b"b")
    first = await storage.repository_releases("acme/tool")
    reader = await storage.open("acme/tool/v2.0.0/b.zip")
    await reader.close()
    await storage.count_download("acme/tool/v2.0.0/b.zip", reader.version)
    with anyio.fail_after(5):  # counts may lag by a second or so
        while (entries := await storage.repository_releases("acme/tool"))[1].listing.packages[
            0
        ].downloads != 1:
            await anyio.sleep(0.1)
    assert entries[0].listing.version == first[0].listing.version  # no count changed there
    assert entries[1].listing.version != first[1].listing.version


async def test_hand_edits_inside_a_release_directory_are_read(tmp_path: Path) -> None:
    """In a directory, a copy into an existing release and an edit of its metadata in
    place (neither changes the repository's stamp) show in the next whole read."""
    storage = DirectoryStorage(tmp_path / "storage")
    storage.prepare()
    await storage.write_meta("acme/tool/v1.0.0", b'{"name": "one"}')
    await storage.repository_releases("acme/tool")
    release = tmp_path / "storage" / "acme" / "tool" / "v1.0.0"
    await anyio.sleep(0.1)  # past the racy window: a stat alone must tell the edit
    (release / "copied.zip").write_bytes(b"by hand")
    with open(release / ".release.json", "r+b") as meta:  # in place: same inode
        meta.write(b'{"name": "two"}')
    [entry] = await storage.repository_releases("acme/tool")
    assert [p.name for p in entry.listing.packages] == ["copied.zip"]
    assert entry.meta == b'{"name": "two"}'


async def test_a_rebuilt_listing_reads_again_only_what_changed(tmp_path: Path) -> None:
    """A directory listing rebuilt after a change reads again only the files whose inode,
    size or mtime changed: a package rewritten in place by hand shows its new size and
    digest, an untouched one is the very object listed before."""
    storage = DirectoryStorage(tmp_path / "storage")
    storage.prepare()
    for name in ("a.zip", "b.zip"):
        await put(storage, name, name.encode())
    before = {p.name: p for p in (await storage.listing()).packages}
    await anyio.sleep(0.1)  # past the racy window
    rewritten = b"rewritten in place"
    with open(tmp_path / "storage" / "a.zip", "r+b") as package:  # same inode
        package.write(rewritten)
    (tmp_path / "storage" / "c.zip").write_bytes(b"by hand")  # the directory changes
    after = {p.name: p for p in (await storage.listing()).packages}
    assert sorted(after) == ["a.zip", "b.zip", "c.zip"]
    assert (after["a.zip"].size, after["a.zip"].sha256) == (
        len(rewritten),
        hashlib.sha256(rewritten).hexdigest(),
    )
    assert after["b.zip"] is before["b.zip"]


async def test_uploads_around_the_part_size_read_back_whole(storage: Storage) -> None:
    """Sizes at the edges of S3's parts (one short, exact, one over, two exact), written
    in pieces as requests arrive: the last part is sent cut to what it holds, and full
    parts reuse their buffers."""
    from release_server.storage.s3_io import PART_SIZE

    piece = 300_000
    for size in (PART_SIZE - 1, PART_SIZE, PART_SIZE + 1, 2 * PART_SIZE):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        key = f"edge-{size}.bin"
        writer = await storage.begin(key)
        try:
            for start in range(0, size, piece):
                await writer.write(data[start : start + piece])
            digest = hashlib.sha256(data).hexdigest()
            package, _ = await storage.publish(writer, digest, False)
        finally:
            await writer.discard()
        assert package.size == size
        assert await read_all(storage, key) == data
