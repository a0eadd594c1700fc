"""The staging root on a shared machine: refused when another user could
have planted files in it, private (0700/0600) whatever the umask."""

from __future__ import annotations

import os
import stat

import pytest

from daskflow import File
from daskflow.errors import UnsafeStagingDir
from daskflow.staging import stage_in
from daskflow.staging.options import Settings

pytest_plugins = ("staging_servers",)  # http_files


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _stage(root, url, cache=True):
    settings = Settings(dir=str(root), cache_enabled=cache, secede=False, retry_attempts=1)
    staged = stage_in("fetch", 1, (File(url),), {}, (), settings)
    try:
        with open(staged.args[0].filepath) as fh:
            return fh.read(), staged.workdir
    finally:
        staged.close()


@pytest.fixture
def served(http_files):
    local, base = http_files
    with open(os.path.join(local, "in.txt"), "w") as fh:
        fh.write("genuine")
    return f"{base}/in.txt"


def test_a_root_made_by_another_user_is_refused(other_user, shared_dir, served):
    root = os.path.join(shared_dir, "daskflow-staging")
    other_user.mkdir(root, mode="755")
    with pytest.raises(UnsafeStagingDir) as info:
        _stage(root, served)
    text = str(info.value)
    assert root in text and "another user owns it" in text and other_user.name in text
    assert "0755" in text and "daskflow.staging.dir" in text and f"remove {root}" in text
    assert os.listdir(root) == []  # nothing fetched into it


def test_a_symbolic_link_of_another_user_is_refused(other_user, shared_dir, served):
    target = os.path.join(shared_dir, "target")
    other_user.mkdir(target, mode="777")
    root = os.path.join(shared_dir, "daskflow-staging")
    assert other_user.run("ln", "-s", target, root).returncode == 0
    with pytest.raises(UnsafeStagingDir, match="symbolic link made by another user"):
        _stage(root, served)


def test_a_root_of_ours_that_others_may_write_is_refused(tmp_path, served):
    root = tmp_path / "staging"
    root.mkdir()
    os.chmod(root, 0o777)
    with pytest.raises(UnsafeStagingDir, match="other users may write in it") as info:
        _stage(root, served)
    assert "0777" in str(info.value)
    os.chmod(root, 0o770)
    with pytest.raises(UnsafeStagingDir, match="0770"):
        _stage(root, served)


def test_a_root_of_ours_readable_by_others_is_tightened(tmp_path, served):
    root = tmp_path / "staging"
    root.mkdir()
    os.chmod(root, 0o755)
    assert _stage(root, served)[0] == "genuine"
    assert _mode(root) == 0o700


def test_a_separate_cache_dir_is_checked_too(other_user, shared_dir, tmp_path, served):
    cache = os.path.join(shared_dir, "cache")
    other_user.mkdir(cache, mode="755")
    settings = Settings(dir=str(tmp_path / "staging"), cache_dir=cache, secede=False)
    with pytest.raises(UnsafeStagingDir, match="another user owns it"):
        stage_in("fetch", 1, (File(served),), {}, (), settings)


def test_everything_staged_is_private_whatever_the_umask(tmp_path, served, run_script):
    """A plain script with umask 0 stages through the cache and without it."""
    root = tmp_path / "staging"
    proc = run_script(f"""
import os
os.umask(0)
from daskflow import File
from daskflow.staging import stage_in
from daskflow.staging.options import Settings
for cache in (True, False):
    s = Settings(dir={str(root)!r}, cache_enabled=cache, secede=False)
    staged = stage_in("fetch", 1, (File({served!r}),), {{}}, (), s)
    print(cache, open(staged.args[0].filepath).read(), staged.workdir)
    for d, dirs, files in os.walk({str(root)!r}):
        for name in dirs:
            print("dir", oct(os.stat(os.path.join(d, name)).st_mode & 0o777), os.path.join(d, name))
        for name in files:
            print("file", oct(os.stat(os.path.join(d, name)).st_mode & 0o777), os.path.join(d, name))
    staged.close()
""")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("True genuine") and any(l.startswith("False genuine") for l in lines)
    assert _mode(root) == 0o700
    dirs = [l.split() for l in lines if l.startswith("dir ")]
    files = [l.split() for l in lines if l.startswith("file ")]
    assert {"tasks", "cache", "urls", "objects", "locks", "tmp"} <= {
        os.path.basename(p) for _, _, p in dirs}
    assert all(mode == "0o700" for _, mode, _ in dirs), dirs
    assert any("/urls/" in p for _, _, p in files) and any("/objects/" in p for _, _, p in files)
    for _, mode, path in files:
        # cached copies (and a task's links to them) are read-only for their owner
        assert mode in (("0o400", "0o600") if "/in/" in path else
                        ("0o400",) if "/objects/" in path else ("0o600",)), (mode, path)
