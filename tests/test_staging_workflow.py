"""A staged workflow end to end on the loopback servers: inputs from HTTP,
FTP and S3, computed on the workers, outputs staged out to S3 and FTP and
read back by the next app; and the transfers overlap computation."""

from __future__ import annotations

import http.server
import os
import threading
import time

import dask
import pytest

import daskflow
from daskflow import File, bash_app, python_app

pytest_plugins = ("staging_servers",)  # its fixtures: staging_config, http_files, ftp_files, s3_bucket


@python_app
def total(inputs=(), outputs=()):
    """Sum the numbers of every input; write the sum to each output."""
    numbers = [float(x) for f in inputs for x in open(f).read().split()]
    for out in outputs:
        with open(out, "w") as fh:
            fh.write(f"{sum(numbers):g}\n")
    return len(numbers)


@bash_app
def report(inputs=(), outputs=()):
    return f"echo \"total: $(cat {inputs[0]})\" > {outputs[0]}"


@python_app
def count_words(f):
    return len(open(f).read().split())


def test_stage_in_from_three_servers_compute_and_stage_out(client, staging_config, http_files,
                                                           ftp_files, s3_bucket):
    http_dir, http_url = http_files
    ftp_dir, ftp_url = ftp_files
    fs, bucket = s3_bucket
    with open(os.path.join(http_dir, "a.txt"), "w") as fh:
        fh.write("1 2 3")
    with open(os.path.join(ftp_dir, "b.txt"), "w") as fh:
        fh.write("10 20")
    fs.pipe(f"{bucket}/in/c.txt", b"100")

    summed = total(inputs=[File(f"{http_url}/a.txt"), File(f"{ftp_url}/b.txt"),
                           File(f"s3://{bucket}/in/c.txt")],
                   outputs=[File(f"s3://{bucket}/out/sum.txt"),
                            File(f"{ftp_url}/out/sum.txt")])
    final = report(inputs=[summed.outputs[0]], outputs=[File(f"{ftp_url}/out/report.txt")])
    assert final.outputs[0].result(timeout=120).url == f"{ftp_url}/out/report.txt"
    assert summed.result() == 6
    assert fs.cat(f"{bucket}/out/sum.txt") == b"136\n"
    with open(os.path.join(ftp_dir, "out", "sum.txt")) as fh:
        assert fh.read() == "136\n"
    with open(os.path.join(ftp_dir, "out", "report.txt")) as fh:
        assert fh.read() == "total: 136\n"


def test_map_over_remote_files(client, staging_config, http_files, s3_bucket):
    http_dir, http_url = http_files
    fs, bucket = s3_bucket
    files = []
    for i in range(4):
        with open(os.path.join(http_dir, f"{i}.txt"), "w") as fh:
            fh.write("w " * i)
        files.append(File(f"{http_url}/{i}.txt"))
    fs.pipe(f"{bucket}/s.txt", b"a b c d e")
    files.append(File(f"s3://{bucket}/s.txt"))
    futures = count_words.map(files, chunksize=2)
    assert daskflow.gather(futures) == [0, 1, 2, 3, 5]


class _Slow(http.server.BaseHTTPRequestHandler):
    """Answers HEAD at once and GET after 4 seconds; ``started`` is set when a GET arrives."""

    started = threading.Event()

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()

    def do_GET(self):
        self.started.set()
        time.sleep(4)
        self.do_HEAD()
        self.wfile.write(b"slow")

    def log_message(self, *args):
        pass


@python_app
def quick():
    return "computed"


@pytest.mark.slow
def test_a_transfer_frees_the_worker_for_other_tasks(tmp_path):
    """One worker with one thread: a task computes while another one downloads."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/slow.txt"
    try:
        with dask.config.set({"daskflow.staging.dir": str(tmp_path / "staging")}), \
                daskflow.Client(n_workers=1, threads_per_worker=1,
                                dashboard_address=":0") as c, c.as_current():
            downloading = count_words(File(url))
            assert _Slow.started.wait(30)  # the only worker thread is now in a transfer
            other = quick()
            assert other.result(timeout=3) == "computed"  # ran during the download
            assert not downloading.done()
            assert downloading.result(timeout=30) == 1
    finally:
        server.shutdown()
        server.server_close()
