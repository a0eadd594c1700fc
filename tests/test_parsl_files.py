"""Parsl's ``File`` and staging providers on daskflow
(``daskflow.parsl.data_provider``): the File Parsl scripts get, and what an
executor's ``storage_access=`` list becomes."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest

from daskflow import File as DaskflowFile
from daskflow import python_app
from daskflow.parsl.config import Config
from daskflow.parsl.data_provider.data_manager import default_staging
from daskflow.parsl.data_provider.file_noop import NoOpFileStaging
from daskflow.parsl.data_provider.files import File
from daskflow.parsl.data_provider.ftp import FTPInTaskStaging, FTPSeparateTaskStaging
from daskflow.parsl.data_provider.globus import GlobusStaging
from daskflow.parsl.data_provider.http import HTTPInTaskStaging, HTTPSeparateTaskStaging
from daskflow.parsl.data_provider.staging import Staging
from daskflow.parsl.data_provider.zip import ZipAuthorityError, ZipFileStaging, zip_path_split
from daskflow.parsl.errors import ConfigurationError, ParslError
from daskflow.parsl.executors import HighThroughputExecutor, ThreadPoolExecutor
from daskflow.parsl.translate import translate

pytest_plugins = ("staging_servers",)  # staging_config: the test's own staging directory


# ------------------------------------------------------------------ File
@pytest.mark.parametrize("scheme", ["http", "https", "ftp", "asdfasdf"])
def test_parts_of_a_url(scheme):
    url = f"{scheme}://some.fqdn.example.com/some/path/1/2/3/base"
    f = File(url)
    assert (f.url, f.scheme, f.netloc, f.path, f.filename, f.local_path) == (
        url, scheme, "some.fqdn.example.com", "/some/path/1/2/3/base", "base", None)
    assert isinstance(f, DaskflowFile)


@pytest.mark.parametrize("url", ["some weird :// url", "a", ""])
def test_what_is_no_url_is_a_local_path(url):
    f = File(url)
    assert (f.url, f.scheme, f.netloc, f.path, f.filename) == (
        url, "file", "", url, url.rsplit("/", 1)[-1])
    with pytest.raises(TypeError, match="non-empty path or URL"):
        DaskflowFile("")  # daskflow's own File keeps refusing it


@pytest.mark.parametrize("prefix", ["file://", ""])
def test_local_path_comes_before_the_path(prefix, tmp_path):
    f = File(f"{prefix}/some/local/path")
    f.local_path = str(tmp_path / "x")
    assert f.filepath == str(f) == os.fspath(f) == str(tmp_path / "x")
    f.local_path = None
    assert f.filepath == str(f) == os.fspath(f) == "/some/local/path"


def test_a_remote_file_without_local_path_has_no_filepath():
    f = File("http://example.org/x.csv")
    for read in (lambda: f.filepath, lambda: str(f), lambda: os.fspath(f)):
        with pytest.raises(ValueError, match="No local_path set for <File "):
            read()
    f.local_path = "/tmp/x.csv"
    assert str(f) == "/tmp/x.csv"
    assert str(DaskflowFile("http://example.org/x.csv")) == "http://example.org/x.csv"


def test_the_url_and_its_parts_stay_as_built():
    f = File("/a/b.txt")
    for name in ("url", "scheme", "netloc", "path", "filename"):
        with pytest.raises(AttributeError, match=f"File.{name} is read from the URL"):
            setattr(f, name, "x")
    f.note = "a script's own attribute"
    assert f.note == "a script's own attribute" and f.url == "/a/b.txt"
    assert pickle.loads(pickle.dumps(f)).note == "a script's own attribute"


@pytest.mark.parametrize("scheme", ["https", "ftps", "", "file", "asdfasdf"])
def test_repr_names_the_parts(scheme):
    url = f"{scheme}://some.netloc/some/path/name.txt" if scheme else "/some/path/name.txt"
    f = File(url)
    r = repr(f)
    assert r.startswith(f"<File at 0x{id(f):x} ") and r.endswith(">")
    for part in (f"url={url}", f"scheme={scheme or 'file'}", "path=/some/path/name.txt",
                 "filename=name.txt"):
        assert f" {part}" in r
    assert (" netloc=some.netloc" in r) == bool(scheme)
    assert "local_path" not in r
    f.local_path = "/here"
    assert repr(f).endswith(" local_path=/here>")


def test_repr_masks_secrets():
    r = repr(File("https://alice:PW-123@example.org/x?sig=SIG-456"))
    assert "PW-123" not in r and "SIG-456" not in r
    assert "url=https://alice:***@example.org/x?sig=***" in r and "netloc=alice:***@" in r


def test_pickle_keeps_the_class_url_and_local_path_and_cleancopy_drops_it():
    f = File("zip:/data/a.zip/in/x.txt")
    f.local_path = "/tmp/x.txt"
    back = pickle.loads(pickle.dumps(f))
    assert type(back) is File
    assert (back.url, back.scheme, back.path, back.filename, back.local_path) == (
        f.url, "zip", "/data/a.zip/in/x.txt", "x.txt", "/tmp/x.txt")
    assert back == f and hash(back) == hash(f)
    clean = f.cleancopy()
    assert type(clean) is File and clean is not f
    assert (clean.url, clean.local_path) == (f.url, None)
    assert f.local_path == "/tmp/x.txt"
    plain = DaskflowFile("/tmp/y.txt").with_local_path("/elsewhere")
    assert type(plain.cleancopy()) is DaskflowFile and plain.cleancopy().local_path is None


def test_equal_urls_are_equal_files_and_one_token():
    from dask.base import tokenize

    assert File("/x") == File("/x") == DaskflowFile("/x") and File("/x") != File("/y")
    assert len({File("/x"), File("/x")}) == 1
    assert tokenize(File("/x")) == tokenize(DaskflowFile("/x"))


@python_app
def seen(f, inputs=()):
    return type(f).__module__, f.local_path, str(f), open(f).read(), str(inputs[0])


def test_a_staged_file_keeps_its_class_on_the_worker_not_on_the_driver(client, staging_config,
                                                                      tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("in/x.txt", "payload")
    (tmp_path / "plain.txt").write_text("")
    f, local = File(f"zip:{archive}/in/x.txt"), File(str(tmp_path / "plain.txt"))
    name, local_path, text, data, plain = seen(f, inputs=[local]).result(30)
    assert (name, data, plain) == (File.__module__, "payload", str(tmp_path / "plain.txt"))
    assert local_path == text and local_path.startswith(str(staging_config))
    assert f.local_path is None  # the submit side's File is not touched


# ------------------------------------------------------------------ providers
def test_parsl_providers_name_the_schemes_daskflow_moves():
    files = {s: File(f"{s}://h/p/x.txt") for s in ("http", "https", "ftp", "globus")}
    files["file"], files["zip"] = File("/p/x.txt"), File("zip:/p/a.zip/x.txt")
    claims = {type(p).__name__: sorted(s for s, f in files.items() if p.can_stage_in(f))
              for p in [NoOpFileStaging(), HTTPInTaskStaging(), FTPInTaskStaging(),
                        ZipFileStaging(), GlobusStaging("ep")]}
    assert claims == {"NoOpFileStaging": ["file"], "HTTPInTaskStaging": ["http", "https"],
                      "FTPInTaskStaging": ["ftp"], "ZipFileStaging": ["zip"],
                      "GlobusStaging": ["globus"]}
    assert not HTTPSeparateTaskStaging().can_stage_out(files["http"])  # read-only
    assert FTPSeparateTaskStaging().can_stage_out(files["ftp"])
    assert not Staging().can_stage_in(files["file"])
    assert [type(p).__name__ for p in default_staging] == [
        "NoOpFileStaging", "FTPSeparateTaskStaging", "HTTPSeparateTaskStaging", "ZipFileStaging"]
    assert repr(GlobusStaging("ep", local_path="/x")) == \
        "GlobusStaging('ep', endpoint_path=None, local_path='/x')"


def test_zip_names():
    assert zip_path_split("/tmp/foo/this.zip/inside/here.txt") == ("/tmp/foo/this.zip",
                                                                     "inside/here.txt")
    assert issubclass(ZipAuthorityError, ParslError)


def test_storage_access_of_parsl_providers_loads():
    config = Config(executors=[ThreadPoolExecutor(storage_access=[
        NoOpFileStaging(), HTTPInTaskStaging(), FTPSeparateTaskStaging(), ZipFileStaging(),
        GlobusStaging("ep-1", endpoint_path="/~/work", local_path="/scratch/work")])])
    plan = translate(config)
    assert not [u for u in plan.unused if "storage_access" in u]
    assert {k: v for k, v in plan.settings.items() if "staging" in k} == {
        "daskflow.staging.globus.local-endpoint": "ep-1",
        "daskflow.staging.globus.endpoint-path": "/~/work",
        "daskflow.staging.globus.local-path": "/scratch/work"}


class OwnStaging(Staging):
    def can_stage_in(self, file):
        return file.scheme == "sp2"


class OwnHttp(HTTPInTaskStaging):
    def stage_in(self, dm, executor, file, parent_fut):
        file.local_path = "./x"


@pytest.mark.parametrize("provider", [OwnStaging(), OwnHttp()])
def test_a_provider_of_the_script_is_refused_naming_it(provider):
    config = Config(executors=[HighThroughputExecutor(label="htex", storage_access=[
        NoOpFileStaging(), provider])])
    name = f"{__name__}.{type(provider).__name__}"
    with pytest.raises(ConfigurationError, match=rf"HighThroughputExecutor\(label='htex'\): "
                                                 rf"storage_access provider {name} cannot run"):
        translate(config)


def test_storage_access_must_be_a_list_of_providers():
    with pytest.raises(ConfigurationError, match="storage_access entry builtins.str is not a "
                                                 "staging provider"):
        translate(Config(executors=[ThreadPoolExecutor(storage_access=["http"])]))
    with pytest.raises(ConfigurationError, match="storage_access must be a list"):
        translate(Config(executors=[ThreadPoolExecutor(storage_access=NoOpFileStaging())]))


def test_two_globus_endpoints_are_refused():
    config = Config(executors=[
        HighThroughputExecutor(label="a", storage_access=[GlobusStaging("ep-1")]),
        HighThroughputExecutor(label="b", storage_access=[GlobusStaging("ep-2")])])
    with pytest.raises(ConfigurationError, match="local-endpoint 'ep-2' differs from "
                                                 "another's 'ep-1'"):
        translate(config)


def test_rsync_staging_is_refused_saying_what_to_use():
    from daskflow.parsl.data_provider.rsync import RSyncStaging

    config = Config(executors=[ThreadPoolExecutor(storage_access=[RSyncStaging("login1")])])
    with pytest.raises(ConfigurationError, match=r"storage_access provider RSyncStaging cannot "
                                                 r"run on daskflow: .*sftp://HOST/path"):
        translate(config)
    assert repr(RSyncStaging("login1")) == "RSyncStaging('login1')"
