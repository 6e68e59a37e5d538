"""Parallel decoding of one video file: independent keyframe segments on several threads, results in order.

A closed group of pictures decodes without any frame before it: an H.264 or HEVC IDR picture, a VP8/VP9 key
frame, any frame of an intra-only codec (MJPEG, ProRes, ...) starts one. The packets from one such keyframe to the
next form an independent *segment*. One reader thread demuxes the file and cuts it into segments; worker threads
decode whole segments, each with its own single-threaded decoder, and apply a per-frame function there (for shot
detection: stride sampling, histograms, thumbnails); the caller receives ``(time, value)`` per frame in decode
order, the frames a sequential decode gives, in the same order.

Why not FFmpeg's own threads: they split one frame (slices) or pipeline consecutive frames (frame threads), which
costs more CPU per frame than a single-threaded decoder (locks, frame copies; figures in docs/shots.md) and leaves
the per-frame analysis on one core. Segments scale with the cores and keep the analysis
next to the decoder.

Guarantees:

* Only codecs whose keyframes are known to be independent are split (:func:`segment_rule`); for the others (MPEG-4
  Part 2 and MPEG-2 open GOPs, AV1, GIF, ...) :func:`parallel_map` returns None and the caller decodes
  sequentially.
* Each segment is checked while it decodes: the pts of its decoded frames must be its packets' pts in ascending
  order (a decoder that wanted a frame of the previous segment drops or invents frames, which breaks this). A frame
  is handed out only once it has passed; at the first mismatch the results end with :data:`MISMATCH` and the caller
  continues sequentially from there (:meth:`dataprep.video.source.ContainerSource.map` does).
* Memory is bounded: at most ``workers + 1`` segments are in flight, each with at most :data:`PACKET_BUDGET` bytes of
  packets queued and ``depth`` results buffered, whatever the length of the video.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

#: A segment is started at an independent keyframe only after this many packets, so intra-only streams (every
#: frame a keyframe) are not cut into segments of one frame.
MIN_SEGMENT_PACKETS = 16
#: Results buffered per segment: enough that a worker runs through a typical group of pictures while the caller
#: still reads the previous segment.
DEFAULT_DEPTH = 256
#: Bytes of packets queued per segment. The reader fills one segment after the other, so the next worker starts
#: only once the current segment's packets fit in its queue: it must hold a whole typical group of pictures (a
#: 250-frame GOP of 1080p H.264 at 8 Mbit/s is 10 MB). Memory, not a count, is the bound that matters.
PACKET_BUDGET = 32 << 20

#: Codecs whose decoder needs nothing of the container but the extradata (so workers make theirs directly).
_BARE_DECODERS = ("h264", "hevc", "vp8", "vp9")
#: H.264 NAL unit type of an IDR slice; HEVC IDR_W_RADL and IDR_N_LP (a CRA starts an *open* GOP: its leading
#: pictures reference the previous one, so it is not a segment boundary).
_H264_IDR = {5}
_HEVC_IDR = {19, 20}


class Mismatch:
    """Result marker: the segment's frames stopped matching its packets; continue sequentially from here."""


class DecodeError:
    """Result marker: demuxing or decoding failed with ``error`` (an FFmpeg error); nothing follows it."""

    def __init__(self, error: Exception):
        self.error = error


MISMATCH = Mismatch()
_FLUSH = object()  # end of a segment's packets: drain the decoder
_ABORT = object()  # demuxing failed: stop without draining, as a sequential decode does
_END = object()


class _Stopped(Exception):
    """The consumer went away (finished, failed or closed): every thread unwinds."""


def _nal_types(data: bytes, length_size: int | None, hevc: bool) -> Iterator[int]:
    """NAL unit types in one packet: length-prefixed (MP4/MKV, ``length_size`` bytes) or Annex B start codes."""
    shift, mask = (1, 0x3F) if hevc else (0, 0x1F)
    if length_size:
        pos = 0
        while pos + length_size < len(data):
            size = int.from_bytes(data[pos:pos + length_size], "big")
            yield (data[pos + length_size] >> shift) & mask
            pos += length_size + size
        return
    pos = data.find(b"\x00\x00\x01")
    while 0 <= pos < len(data) - 3:
        yield (data[pos + 3] >> shift) & mask
        pos = data.find(b"\x00\x00\x01", pos + 3)


def _length_size(extradata: bytes | None, hevc: bool) -> int | None:
    """NAL length-prefix size from avcC/hvcC extradata (first byte 1); None for Annex B streams."""
    if not extradata or extradata[0] != 1:
        return None
    index = 21 if hevc else 4
    return (extradata[index] & 3) + 1 if len(extradata) > index else None


def segment_rule(codec_context) -> Callable[[Any], bool] | None:
    """``starts_segment(packet)`` for a stream whose keyframes can be recognised as independent, else None."""
    codec = codec_context.codec
    name = codec.name
    if name in ("h264", "hevc"):
        hevc = name == "hevc"
        length_size = _length_size(codec_context.extradata, hevc)
        idr = _HEVC_IDR if hevc else _H264_IDR

        def starts_idr(packet) -> bool:
            return packet.is_keyframe and any(t in idr for t in _nal_types(bytes(packet), length_size, hevc))

        return starts_idr
    if name in ("vp8", "vp9") or codec.intra_only:
        # a VP8/VP9 key frame refreshes every reference buffer; intra-only codecs have no references at all
        return lambda packet: packet.is_keyframe
    return None


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.05)
            return
        except queue.Full:
            pass


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            pass


class _PacketQueue:
    """A FIFO of packets holding at most ``budget`` bytes (and always at least one packet)."""

    def __init__(self, budget: int):
        self._items: deque = deque()
        self._bytes = 0
        self._budget = budget
        self._changed = threading.Condition()

    def put(self, item, size: int, stop: threading.Event) -> None:
        with self._changed:
            while self._items and self._bytes + size > self._budget:
                if stop.is_set():
                    raise _Stopped
                self._changed.wait(0.05)
            self._items.append((item, size))
            self._bytes += size
            self._changed.notify_all()

    def get(self, stop: threading.Event):
        with self._changed:
            while not self._items:
                if stop.is_set():
                    raise _Stopped
                self._changed.wait(0.05)
            item, size = self._items.popleft()
            self._bytes -= size
            self._changed.notify_all()
            return item


class _Segment:
    __slots__ = ("packets", "results")

    def __init__(self, depth: int):
        self.packets = _PacketQueue(PACKET_BUDGET)
        self.results: queue.Queue = queue.Queue(depth)


def parallel_map(container, stream, open_stream: Callable[[], tuple[Any, Any]],
                 convert: Callable[[], Callable[[Any], Any]], workers: int,
                 depth: int | None = None) -> Iterator[Any] | None:
    """Decode a stream's segments on ``workers`` threads; None when the stream cannot be split safely.

    Args:
        container, stream: an opened PyAV container and its video stream, nothing read yet, decoder options set.
            The reader thread demuxes it (and closes it). When this returns None it is left untouched, for the
            caller's sequential decode.
        open_stream: ``() -> (container, video stream)`` opened afresh the same way, for codecs whose decoder needs
            more than the extradata (not :data:`_BARE_DECODERS`): each worker then decodes with the codec context
            of its own container. Decoders run single-threaded.
        convert: ``() -> f`` called once per worker thread; ``f(av_frame)`` is the per-frame work, run on the
            worker threads (it must not share mutable state between calls).
        workers: decoding threads (>= 2 to be worth it).
        depth: results buffered per segment (default :data:`DEFAULT_DEPTH`).

    Returns:
        An iterator (or None, see above) of, in decode order: ``(time, value)`` for each frame (``time`` in
        seconds, None when the frame has no pts), then possibly one marker: :data:`MISMATCH` (continue
        sequentially after the frames received), or a :class:`DecodeError` (decoding stopped there, as it would
        have sequentially). Closing the iterator early stops every thread.
    """
    rule = segment_rule(stream.codec_context)
    if rule is None:
        return None
    return _run(container, stream, rule, open_stream, convert, workers, depth or DEFAULT_DEPTH)


def _run(container, stream, rule, open_stream, convert, workers: int, depth: int) -> Iterator[Any]:
    import av

    codec_name = stream.codec_context.name
    time_base = stream.time_base
    extradata = stream.codec_context.extradata
    options = dict(stream.codec_context.options or {})
    stop = threading.Event()
    order: queue.Queue = queue.Queue()
    slots = threading.Semaphore(workers + 1)
    local = threading.local()
    opened: list = []  # the workers' containers, closed at the end by this thread (list.append is atomic)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="celbench-decode")

    def acquire_slot() -> None:
        while not slots.acquire(timeout=0.05):
            if stop.is_set():
                raise _Stopped

    def new_decoder():
        if codec_name in _BARE_DECODERS:
            # the stream's parameters are all in its extradata: no second container (whose opening probe decodes
            # a frame: about 3 ms of H.264 per worker on the One Piece clip)
            decoder = av.CodecContext.create(codec_name, "r")
            decoder.extradata = extradata
            decoder.options = dict(options)
        else:
            worker_container, worker_stream = open_stream()
            opened.append(worker_container)
            decoder = worker_stream.codec_context
        decoder.thread_count = 1
        return decoder

    def decode_segment(segment: _Segment) -> None:
        try:
            if not hasattr(local, "decoder"):
                local.decoder = new_decoder()
                local.convert = convert()
            else:
                local.decoder.flush_buffers()  # a fresh decoder state for an independent segment
            decoder, to_value = local.decoder, local.convert
            pending: list[int] = []  # pts of the packets sent whose frame has not come out
            while True:
                packet = segment.packets.get(stop)
                if packet is _ABORT:
                    break
                if packet is not _FLUSH:
                    heapq.heappush(pending, packet.pts)
                try:
                    frames = decoder.decode(None if packet is _FLUSH else packet)
                except (av.FFmpegError, ValueError, MemoryError) as error:
                    _finish_with(segment, DecodeError(error), stop)
                    return
                for frame in frames:
                    # frames leave the decoder in pts order: each must be the earliest packet not yet out
                    if not pending or frame.pts != heapq.heappop(pending):
                        _finish_with(segment, MISMATCH, stop)
                        return
                    frame.time_base = time_base  # drained frames carry none in a bare decoder
                    time = float(frame.time) if frame.time is not None else None
                    _put(segment.results, (time, to_value(frame)), stop)
                if packet is _FLUSH:
                    if pending:  # packets that gave no frame
                        _finish_with(segment, MISMATCH, stop)
                        return
                    break
            _put(segment.results, _END, stop)
        except _Stopped:
            return
        except BaseException as error:  # the caller's function (or opening the file) failed: re-raised there
            _finish_with(segment, error, stop)

    def read() -> None:
        segment: _Segment | None = None
        count = 0
        try:
            try:
                for packet in container.demux(stream):
                    if not packet.size:
                        continue  # the demuxer's closing empty packet
                    if packet.pts is None:
                        raise _NoPts
                    if segment is None or (count >= MIN_SEGMENT_PACKETS and rule(packet)):
                        if segment is not None:
                            segment.packets.put(_FLUSH, 0, stop)
                        acquire_slot()
                        segment = _Segment(depth)
                        order.put(segment)
                        pool.submit(decode_segment, segment)
                        count = 0
                    segment.packets.put(packet, packet.size, stop)
                    count += 1
            except av.error.EOFError:
                pass  # the demuxer met the end of data: a normal end
            except _NoPts:
                if segment is not None:
                    segment.packets.put(_ABORT, 0, stop)
                order.put(MISMATCH)
                return
            except (av.FFmpegError, ValueError, MemoryError) as error:
                if segment is not None:
                    segment.packets.put(_ABORT, 0, stop)
                order.put(DecodeError(error))
                return
            if segment is not None:
                segment.packets.put(_FLUSH, 0, stop)
        except _Stopped:
            pass
        finally:
            order.put(_END)
            container.close()

    reader = threading.Thread(target=read, name="celbench-demux", daemon=True)
    reader.start()
    try:
        while True:
            item = _get(order, stop)
            if item is _END:
                return
            if not isinstance(item, _Segment):
                yield item  # a marker from the reader
                return
            while True:
                result = _get(item.results, stop)
                if result is _END:
                    break
                if isinstance(result, BaseException):
                    raise result
                yield result
                if result is MISMATCH or isinstance(result, DecodeError):
                    return
            slots.release()
    finally:
        stop.set()
        reader.join()
        pool.shutdown(wait=True, cancel_futures=True)
        for worker_container in opened:
            worker_container.close()


class _NoPts(Exception):
    """A packet without pts: the order check cannot run, so the stream is not split."""


def _finish_with(segment: _Segment, marker, stop: threading.Event) -> None:
    """End a segment's results with a marker (a mismatch, an error) and the end of segment."""
    try:
        _put(segment.results, marker, stop)
        _put(segment.results, _END, stop)
    except _Stopped:
        pass
