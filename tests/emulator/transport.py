"""Adjustments to hypercorn (0.13, Debian python3-hypercorn) for the emulator.

* An aborted response (the application raised after the headers and part of
  the body were sent, e.g. a `drop_after_bytes` fault) ends like a real
  dropped connection.  Over HTTP/1.1 hypercorn already closes the
  connection.  Over HTTP/2 it used to forget the stream without telling
  the client, which then waited for the rest of the body forever; now the
  bytes already given are sent, then the stream is reset (RST_STREAM
  INTERNAL_ERROR), or the whole TCP connection is closed when the
  application asked for that (scope[DROP_KEY] = "close"), or reset with
  a TCP RST and no TLS close_notify (scope[DROP_KEY] = "rst", both
  protocols).

* HTTP/2 throughput (pure-Python h2): larger stream buffers, several DATA
  frames per socket write, large receive windows and frames so that
  uploads are not held back by WINDOW_UPDATE round trips, and long
  Huffman-coded header values (the bearer token) decoded once.

install() applies the patches once; it is called by emulator.py before
hypercorn serves.
"""
import asyncio
import functools
import socket
import struct
import sys

import h11
import h2.errors
import h2.exceptions
import h2.settings
from hypercorn.events import Closed
from hypercorn.protocol import h2 as hc_h2
from hypercorn.protocol import h11 as hc_h11
from hypercorn.protocol.events import StreamClosed

from core import DROP_KEY  # scope[DROP_KEY] = "close": close the connection

# HTTP/2 tuning: bytes buffered per stream before the app waits, bytes
# written to the socket in one go, receive windows announced to clients
STREAM_BUFFER = 1 << 20
WRITE_BATCH = 256 << 10
RECV_WINDOW = 16 << 20
MAX_FRAME = 1 << 20

_installed = []


async def _reset_tcp(proto):
    """Resets the TCP connection of PROTO (RST, no TLS close_notify), once
    what was written has left: like a connection cut by the network."""
    server = getattr(proto.send, "__self__", None)
    writer = getattr(server, "writer", None)
    if writer is None:
        await proto.send(Closed())
        return
    transport = writer.transport
    for _ in range(250):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # let the kernel hand it to the peer
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def _abort_stream(proto, sid, buf, mode):
    """Sends what is buffered for stream SID, then resets it (or closes /
    resets the connection when MODE is "close" / "rst")."""
    if buf.buffer:
        try:
            await asyncio.wait_for(buf.drain(), 60)
        except asyncio.TimeoutError:
            pass  # the client does not read: reset anyway
    if mode == "close":
        await proto.send(Closed())
        return
    if mode == "rst":
        await _reset_tcp(proto)
        return
    try:
        proto.connection.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
    except h2.exceptions.ProtocolError:
        pass  # already closed by the client
    await proto._flush()
    # the send task removes the buffer: with the buffer complete, its
    # end_stream on the reset stream fails and it cleans up
    await buf.close()
    try:
        proto.priority.unblock(sid)
    except Exception:  # noqa: BLE001 (priority.MissingStreamError)
        pass
    await proto.has_data.set()


def _patch_abort():
    orig = hc_h2.H2Protocol.stream_send

    async def stream_send(self, event):
        if isinstance(event, StreamClosed):
            sid = event.stream_id
            buf = self.stream_buffers.get(sid)
            stream = self.streams.get(sid)
            # no EndBody came (it marks the buffer complete): aborted
            if buf is not None and stream is not None and \
                    not buf._complete and \
                    getattr(stream, "response", None) is not None:
                mode = (getattr(stream, "scope", None) or {}).get(DROP_KEY)
                await _abort_stream(self, sid, buf, mode)
        await orig(self, event)

    hc_h2.H2Protocol.stream_send = stream_send

    orig11 = hc_h11.H11Protocol.stream_send

    async def stream_send11(self, event):
        # HTTP/1.1 closes the connection after an aborted response anyway;
        # "rst" makes it a TCP reset
        if isinstance(event, StreamClosed) and self.stream is not None and \
                self.connection.our_state is h11.SEND_BODY and \
                (getattr(self.stream, "scope", None) or {}).get(
                    DROP_KEY) == "rst":
            await _reset_tcp(self)
        await orig11(self, event)

    hc_h11.H11Protocol.stream_send = stream_send11


def _patch_speed():
    hc_h2.BUFFER_HIGH_WATER = STREAM_BUFFER
    hc_h2.BUFFER_LOW_WATER = STREAM_BUFFER // 2

    orig_init = hc_h2.H2Protocol.__init__
    orig_initiate = hc_h2.H2Protocol.initiate

    def __init__(self, *a, **kw):
        orig_init(self, *a, **kw)
        c = self.connection
        codes = h2.settings.SettingCodes
        values = dict(c.local_settings.items())
        values[codes.INITIAL_WINDOW_SIZE] = RECV_WINDOW
        values[codes.MAX_FRAME_SIZE] = MAX_FRAME
        # initial values: announced by the first SETTINGS frame
        c.local_settings = h2.settings.Settings(client=False,
                                                initial_values=values)
        c.max_inbound_frame_size = MAX_FRAME

    async def initiate(self, headers=None, settings=None):
        await orig_initiate(self, headers, settings)
        # the connection window is only raised by WINDOW_UPDATE
        try:
            self.connection.increment_flow_control_window(
                RECV_WINDOW - 65535)
        except h2.exceptions.ProtocolError:
            pass
        await self._flush()

    async def _send_data(self, stream_id):
        """hypercorn's _send_data, but up to WRITE_BATCH bytes of frames
        per socket write instead of one 16 KiB frame."""
        try:
            sent = 0
            while True:
                chunk = min(self.connection.local_flow_control_window(
                    stream_id), self.connection.max_outbound_frame_size)
                buf = self.stream_buffers[stream_id]
                data = await buf.pop(max(0, chunk))
                if not data:
                    break
                self.connection.send_data(stream_id, data)
                sent += len(data)
                if sent >= WRITE_BATCH or not buf.buffer:
                    break
            if sent:
                await self._flush()
            else:
                self.priority.block(stream_id)
            if self.stream_buffers[stream_id].complete:
                self.connection.end_stream(stream_id)
                await self._flush()
                del self.stream_buffers[stream_id]
                self.priority.remove_stream(stream_id)
        except (h2.exceptions.StreamClosedError, KeyError,
                h2.exceptions.ProtocolError):
            # the stream or connection closed while we waited: clean up
            buf = self.stream_buffers.pop(stream_id, None)
            if buf is not None:
                await buf.close()
            try:
                self.priority.remove_stream(stream_id)
            except Exception:  # noqa: BLE001 (priority.MissingStreamError)
                pass

    hc_h2.H2Protocol.__init__ = __init__
    hc_h2.H2Protocol.initiate = initiate
    hc_h2.H2Protocol._send_data = _send_data


def _patch_hpack():
    """HPACK Huffman decoding is pure Python (~0.7 ms for a bearer token):
    clients send the same long header (Authorization) on every request
    without indexing it, so long strings are decoded once and cached."""
    import hpack.hpack

    plain = hpack.hpack.decode_huffman

    @functools.lru_cache(maxsize=256)
    def cached(data):
        return plain(data)

    def decode_huffman(data):
        if len(data) < 64:
            return plain(data)
        return cached(bytes(data))

    hpack.hpack.decode_huffman = decode_huffman


def install(speed=True):
    """Applies the patches (once).  They rely on hypercorn 0.13 internals
    (Debian 12); with a hypercorn that lacks them nothing is patched and a
    warning is printed (drops over HTTP/2 then stall again)."""
    if _installed:
        return
    needed = [(hc_h2.H2Protocol, "_send_data"), (hc_h2.H2Protocol, "_flush"),
              (hc_h2.H2Protocol, "stream_send"), (hc_h2, "StreamBuffer"),
              (hc_h2, "BUFFER_HIGH_WATER"), (hc_h11.H11Protocol,
                                             "stream_send")]
    if not all(hasattr(o, n) for o, n in needed):
        print("emulator: this hypercorn is not the one transport.py knows: "
              "HTTP/2 drops and tuning are not patched", file=sys.stderr)
        _installed.append(False)
        return
    _patch_abort()
    if speed:
        _patch_speed()
        _patch_hpack()
    _installed.append(True)
