"""Hold packets from one NFQUEUE for a fixed time, then let them go.

Stand-in for ``tc qdisc ... netem delay`` on kernels built without netem
(the test machine's kernel has no CONFIG_NET_SCH_NETEM and no modules).
``bed slow`` runs it inside a host's network namespace and adds an nftables
rule there that queues the host's outgoing eth0 packets to queue 0:

    ip netns exec capstan-h1 python3 delay.py --queue 0 --ms 200 --name DIR

The kernel keeps each packet; this program only receives its metadata and,
MS milliseconds later, gives the verdict ACCEPT. Packets are released in
arrival order, like netem with a constant delay. Standard library only: it
speaks nfnetlink directly (linux/netfilter/nfnetlink_queue.h).
"""

from __future__ import annotations

import argparse
import collections
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NF_ACCEPT = 1


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    head = struct.pack("=HH", 4 + len(payload), kind)
    pad = b"\0" * (-len(payload) % 4)
    return head + payload + pad


class Queue:
    """A bound NFQUEUE: receive packet ids, send verdicts."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
        self._config(
            _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
            + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 65536))
            + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
            + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
        )

    def _send(self, msg: int, attrs: bytes, flags: int = NLM_F_REQUEST) -> None:
        self.seq += 1
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.number) + attrs
        head = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, self.seq, 0)
        self.sock.send(head + body)

    def _config(self, attrs: bytes) -> None:
        """Send a config message and fail loudly if the kernel refuses it."""
        self._send(NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK)
        data = self.sock.recv(65536)
        kind = struct.unpack_from("=IH", data)[1]
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, 16)
            if code:
                raise OSError(-code, f"nfqueue config refused: {os.strerror(-code)}")

    def accept(self, packet_id: int) -> None:
        self._send(NFQNL_MSG_VERDICT, _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)))

    def packet_ids(self):
        """Yield the ids of the packets in one recv() worth of messages."""
        try:
            data = self.sock.recv(1 << 20)
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:  # we fell behind; kernel fails open
                return
            raise
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if length < 16:
                break
            if kind & 0xFF == NFQNL_MSG_PACKET and kind >> 8 == NFNL_SUBSYS_QUEUE:
                pos = offset + 20  # nlmsghdr (16) + nfgenmsg (4)
                while pos + 4 <= offset + length:
                    alen, atype = struct.unpack_from("=HH", data, pos)
                    if alen < 4:
                        break
                    if atype & 0x3FFF == NFQA_PACKET_HDR:
                        yield struct.unpack_from("!I", data, pos + 4)[0]
                    pos += (alen + 3) & ~3
            offset += (length + 3) & ~3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--ms", type=int, required=True)
    parser.add_argument("--name", default="", help="label for ps; bed passes the host's state dir")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

    queue = Queue(args.queue)
    delay = args.ms / 1000.0
    held: collections.deque[tuple[float, int]] = collections.deque()
    print("ready", flush=True)  # bed waits for this before adding the nft rule
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            queue.accept(held.popleft()[1])
        timeout = max(0.0, held[0][0] - now) if held else None
        ready = select.select([queue.sock], [], [], timeout)[0]
        if ready:
            due = time.monotonic() + delay
            held.extend((due, packet_id) for packet_id in queue.packet_ids())


if __name__ == "__main__":
    sys.exit(main())
