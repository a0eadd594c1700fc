"""Members of zip archives as Files (``zip:/path/archive.zip/member``):
read by apps, written by apps, gathered from many tasks into one archive.
The shared promises of every mover are in test_mover_contract.py (``zip``)."""

from __future__ import annotations

import zipfile

import pytest

from daskflow import File, StagingError, UnstageableFile, bash_app, python_app
from daskflow.staging.zipfiles import ZipAuthorityError, split

pytest_plugins = ("staging_servers",)  # staging_config: the test's own staging directory

TIMEOUT = 30


@python_app
def count_lines(f):
    with open(f) as fh:
        return len(fh.readlines())


@python_app
def numbered_lines(n, outputs=()):
    with open(outputs[0], "w") as fh:
        fh.writelines(f"{i}\n" for i in range(n))


@bash_app
def echo_positions(outputs=()):
    return "; ".join(f"echo {i} > {o}" for i, o in enumerate(outputs))


def members(archive) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None
        return {n: z.read(n) for n in z.namelist()}


def test_split_at_the_first_zip_directory():
    assert split("/tmp/a/this.zip/inside/here.txt") == ("/tmp/a/this.zip", "inside/here.txt")
    assert split("/tmp/a.zip/b.zip/c") == ("/tmp/a.zip", "b.zip/c")
    assert split("/tmp/a.zip") == ("/tmp/a.zip", "")


def test_a_member_written_by_one_app_is_read_by_the_next(client, staging_config, tmp_path):
    archive = tmp_path / "container.zip"
    f = File(f"zip:{archive}/data.txt")
    produced = numbered_lines(17, outputs=[f]).outputs[0]
    assert count_lines(produced).result(TIMEOUT) == 17
    assert members(archive) == {"data.txt": "".join(f"{i}\n" for i in range(17)).encode()}


def test_outputs_go_to_several_archives_and_sub_paths(client, staging_config, tmp_path):
    one, two = tmp_path / "out" / "one.zip", tmp_path / "two.zip"  # out/ is made for it
    outputs = [File(f"zip:{one}/a/b/c/data.txt"), File(f"zip:{one}/something.txt"),
               File(f"zip:{two}/a/d/other.txt")]
    future = echo_positions(outputs=outputs)
    assert [o.result(TIMEOUT) for o in future.outputs] == outputs
    assert members(one) == {"a/b/c/data.txt": b"0\n", "something.txt": b"1\n"}
    assert members(two) == {"a/d/other.txt": b"2\n"}


def test_many_tasks_gather_into_one_archive_and_a_rewrite_replaces(client, staging_config,
                                                                   tmp_path):
    archive = tmp_path / "gathered.zip"
    futures = [numbered_lines(i, outputs=[File(f"zip:{archive}/part-{i}.txt")])
               for i in range(8)]
    for future in futures:
        future.result(TIMEOUT)
    assert sorted(members(archive)) == [f"part-{i}.txt" for i in range(8)]
    numbered_lines(2, outputs=[File(f"zip:{archive}/part-3.txt")]).result(TIMEOUT)
    found = members(archive)
    assert len(found) == 8 and found["part-3.txt"] == b"0\n1\n"


def test_a_missing_member_fails_naming_it(client, staging_config, tmp_path):
    archive = tmp_path / "some.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("present.txt", "here\n")
    assert count_lines(File(f"zip:{archive}/present.txt")).result(TIMEOUT) == 1
    future = count_lines(File(f"zip:{archive}/absent.txt"))
    with pytest.raises(StagingError) as info:
        future.result(TIMEOUT)
    assert info.value.cause.startswith("FileNotFoundError")
    assert f"{archive} has no member 'absent.txt'" in info.value.cause


def test_a_host_part_is_refused_at_call_time(client, tmp_path):
    url = f"zip://someauthority{tmp_path}/container.zip/data.txt"
    with pytest.raises(ZipAuthorityError, match="zip: URL has no host part, got "
                                                "'someauthority'") as info:
        echo_positions(outputs=[File(url)])
    assert isinstance(info.value, UnstageableFile) and url in str(info.value)


def test_a_url_naming_no_member_is_refused_at_call_time(client, tmp_path):
    with pytest.raises(UnstageableFile, match="names no member of an archive"):
        count_lines(File(f"zip:{tmp_path}/container.zip"))
    with pytest.raises(UnstageableFile, match="names no member of an archive"):
        count_lines(File(f"zip:{tmp_path}/data.txt"))
