import gzip
import hashlib
import io

import pytest

from lake_assets import fetch


def test_http_download_streams_bytes_and_hashes(http_server):
    body = gzip.compress(b"a,b\n1,2\n" * 1000, mtime=0)
    http_server.put("y/f.csv.gz", body)
    out = io.BytesIO()
    result = fetch.download(f"{http_server.url}/y/f.csv.gz", out)
    assert out.getvalue() == body
    assert (result.bytes, result.sha256, result.gzip) == (
        len(body),
        hashlib.sha256(body).hexdigest(),
        True,
    )


def test_multi_member_gzip_is_complete(http_server):
    body = gzip.compress(b"a\n1\n", mtime=0) + gzip.compress(b"2\n", mtime=0)
    http_server.put("m.csv.gz", body)
    assert fetch.download(f"{http_server.url}/m.csv.gz", io.BytesIO()).bytes == len(body)


def test_404_is_not_found_naming_the_url(http_server):
    url = f"{http_server.url}/yellow/yellow_tripdata_2030-01.csv.gz"
    with pytest.raises(fetch.SourceNotFound, match=r"yellow_tripdata_2030-01.csv.gz: HTTP 404"):
        fetch.download(url, io.BytesIO())


def test_5xx_is_transient(http_server):
    http_server.put("f.csv.gz", gzip.compress(b"x\n"))
    http_server.behaviour.status["/f.csv.gz"] = [503]
    with pytest.raises(fetch.TransientSourceError, match="HTTP 503"):
        fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO())
    # the server recovered: the next request succeeds
    assert fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO()).gzip


def test_truncated_gzip_is_corrupt(http_server):
    body = gzip.compress(b"a,b\n" + b"1,2\n" * 50000)
    http_server.put("cut.csv.gz", body[: len(body) // 2])
    with pytest.raises(fetch.CorruptDownload, match="cut.csv.gz: gzip stream is truncated"):
        fetch.download(f"{http_server.url}/cut.csv.gz", io.BytesIO())


def test_gz_name_with_other_content_is_corrupt(http_server):
    http_server.put("page.csv.gz", b"rate limited, try later")
    with pytest.raises(fetch.CorruptDownload, match="expected a gzip file"):
        fetch.download(f"{http_server.url}/page.csv.gz", io.BytesIO())


def test_an_html_page_is_refused_naming_it(http_server):
    http_server.put("page.csv.gz", b"<html>rate limited</html>")
    with pytest.raises(fetch.CorruptDownload) as info:
        fetch.download(f"{http_server.url}/page.csv.gz", io.BytesIO())
    assert str(info.value).startswith(f"{http_server.url}/page.csv.gz: the server ")
    assert "HTML" in str(info.value)


def test_corrupt_gzip_data(http_server):
    body = bytearray(gzip.compress(b"a,b\n" + b"1,2\n" * 5000))
    body[30:60] = b"\xff" * 30
    http_server.put("bad.csv.gz", bytes(body))
    with pytest.raises(fetch.CorruptDownload, match="corrupt gzip data"):
        fetch.download(f"{http_server.url}/bad.csv.gz", io.BytesIO())


def test_file_urls(tmp_path):
    src = tmp_path / "z.csv"
    src.write_bytes(b'"LocationID"\r\n1\r\n')
    out = io.BytesIO()
    assert fetch.download(src.as_uri(), out).bytes == 17
    with pytest.raises(fetch.SourceNotFound, match="no such file"):
        fetch.download((tmp_path / "missing.csv").as_uri(), io.BytesIO())


def test_connection_refused_is_transient():
    with pytest.raises(fetch.TransientSourceError):
        fetch.download("http://127.0.0.1:9/x.csv.gz", io.BytesIO(), timeout=2)


def test_unsupported_scheme():
    with pytest.raises(fetch.SourceError, match="unsupported scheme 'ftp'"):
        fetch.download("ftp://example.invalid/x.csv", io.BytesIO())


def test_cut_parquet_is_corrupt(http_server, tmp_path):
    from datetime import date

    from lake_dev import generator

    src = generator.write_month_parquet("yellow", date(2024, 1, 1), 2000, tmp_path / "y.parquet")
    data = src.read_bytes()
    http_server.put("y.parquet", data)
    assert fetch.download(f"{http_server.url}/y.parquet", io.BytesIO()).bytes == len(data)
    http_server.put("cut.parquet", data[: len(data) // 2])
    with pytest.raises(fetch.CorruptDownload, match="cut.parquet: not a complete Parquet file"):
        fetch.download(f"{http_server.url}/cut.parquet", io.BytesIO())


def _body(http_server, name: str = "f.csv.gz") -> bytes:
    # Random hex lines: a few kilobytes even gzipped, so a trickle takes many seconds.
    import secrets

    data = gzip.compress(b"a\n" + "\n".join(secrets.token_hex(8) for _ in range(400)).encode())
    http_server.put(name, data)
    return data


def test_a_server_that_hangs_after_its_headers_fails_within_the_deadline(http_server):
    import time

    _body(http_server)
    http_server.behaviour.faults["/f.csv.gz"] = "hang"
    started = time.monotonic()
    with pytest.raises(fetch.DeadlineExceeded) as info:
        fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO(), timeout=30, deadline=1.5)
    waited = time.monotonic() - started
    assert 1.4 < waited < 5, waited
    assert str(info.value).startswith(f"{http_server.url}/f.csv.gz: gave up after 1.")
    assert str(info.value).endswith("bytes (deadline 2 s)")


def test_a_trickling_server_cannot_hold_a_download_past_its_deadline(http_server):
    import time

    data = _body(http_server)
    http_server.behaviour.faults["/f.csv.gz"] = "trickle"
    started = time.monotonic()
    with pytest.raises(fetch.DeadlineExceeded) as info:
        fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO(), timeout=30, deadline=1.0)
    assert time.monotonic() - started < 4
    assert f"of {len(data)} bytes" in str(info.value)


def test_the_deadline_is_derived_from_the_size():
    assert fetch.deadline_for(None, 60) == fetch.UNKNOWN_SIZE_DEADLINE
    assert fetch.deadline_for(256 * 1024 * 100, 60) == 160.0


def test_a_body_cut_short_of_its_content_length_is_transient(http_server):
    data = _body(http_server)
    http_server.behaviour.faults["/f.csv.gz"] = "cut"
    with pytest.raises(fetch.TransientSourceError) as info:
        fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO(), timeout=5)
    assert f"body ended after {len(data) // 2} of {len(data)} bytes (Content-Length)" in str(
        info.value
    )


def test_an_html_page_with_200_is_refused_by_its_content_type(http_server):
    _body(http_server)
    http_server.behaviour.faults["/f.csv.gz"] = "html"
    with pytest.raises(fetch.CorruptDownload) as info:
        fetch.download(f"{http_server.url}/f.csv.gz", io.BytesIO())
    assert "with an HTML page (Content-Type text/html)" in str(info.value)
    assert not isinstance(info.value, fetch.TransientSourceError)


def test_suffix_comes_from_the_bytes(http_server):
    http_server.put("noext", gzip.compress(b"a\n1\n"))
    assert fetch.download(f"{http_server.url}/noext", io.BytesIO()).suffix == ".csv.gz"
    http_server.put("plain.txt", b"a\n1\n")
    assert fetch.download(f"{http_server.url}/plain.txt", io.BytesIO()).suffix == ".csv"


def test_file_urls_stay_below_their_root(tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    root = (tmp_path / "mirror").as_uri() + "/"
    url = (tmp_path / "mirror").as_uri() + "/../secret.csv"
    with pytest.raises(fetch.SourceError) as info:
        fetch.download(url, io.BytesIO(), file_root=root)
    assert "outside the mirror's folder" in str(info.value)
    assert not isinstance(info.value, fetch.TransientSourceError)


def test_progress_reports_bytes_so_far_of_the_announced_total(http_server):
    data = _body(http_server)
    calls: list[tuple[int, int | None]] = []
    result = fetch.download(
        f"{http_server.url}/f.csv.gz", io.BytesIO(), progress=lambda n, t: calls.append((n, t))
    )
    assert result.bytes == len(data)
    assert calls and calls[-1] == (len(data), len(data))
    assert [n for n, _ in calls] == sorted(n for n, _ in calls)
