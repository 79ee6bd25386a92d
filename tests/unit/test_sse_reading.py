"""engines/sse.py: server-sent events read by network read, lines cut anywhere."""

from __future__ import annotations

import httpx
import pytest

from engines.sse import Lines, data_batches


def fed(*reads: bytes) -> list[str]:
    lines = Lines()
    out = [line for data in reads for line in lines.feed(data)]
    return out + lines.close()


def test_lines_end_with_lf_crlf_or_cr_even_when_cut_between_reads():
    assert fed(b"a\nb\r", b"\nc\rd") == ["a", "b", "c", "d"]
    assert fed(b"data: x\r\n\r\n") == ["data: x", ""]


def test_a_character_cut_between_reads_is_decoded_whole():
    text = "data: café\n".encode()
    cut = text.index(b"\xa9")  # the second byte of é
    assert fed(text[:cut], text[cut:]) == ["data: café"]


def test_a_line_separator_inside_json_is_data_not_an_end_of_line():
    assert fed('data: {"t": "a\u2028b"}\n'.encode()) == ['data: {"t": "a\u2028b"}']


async def collect(response: httpx.Response) -> list[list[str]]:
    return [batch async for batch in data_batches(response)]


async def test_payloads_come_per_read_up_to_done():
    reads = [b"data: 1\n\ndata: 2\n", b"\n: comment\nevent: x\ndata: 3\n\n", b"data: [DONE]\n\ndata: 4\n\n"]
    assert await collect(httpx.Response(200, content=_stream(reads))) == [["1", "2"], ["3"]]


async def test_a_last_line_without_its_end_still_counts():
    assert await collect(httpx.Response(200, content=_stream([b"data: 1\n\ndata: 2"]))) == [["1"], ["2"]]


@pytest.mark.parametrize("reads", [[b"\n\n"], [b": keep-alive\n\n", b"data: [DONE]\n\n"]])
async def test_reads_without_payloads_give_no_batch(reads):
    assert await collect(httpx.Response(200, content=_stream(reads))) == []


class _stream(httpx.AsyncByteStream):
    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads

    async def __aiter__(self):
        for data in self._reads:
            yield data
