"""The embedded broker under producers and consumers at once: every message taken whole, exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from queue import Empty

from kombu import Connection

from relctl_core import fsbroker


def _connection(folder: Path, transport: str) -> Connection:
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
    }
    return Connection(transport=transport, transport_options=options)


# A producer in a process of its own, so that it writes while the consumers read, truly at once.
PRODUCER = """
import sys
from pathlib import Path
from kombu import Connection
folder, transport, queue, offset, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
options = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
           "control_folder": str(folder / "control"), "processed_folder": str(folder / "processed")}
with Connection(transport=transport, transport_options=options) as conn:
    q = conn.SimpleQueue(queue)
    for i in range(count):
        q.put({"n": offset + i, "pad": "x" * 20000})
"""


def test_concurrent_producers_and_consumers_see_each_message_once(tmp_path: Path) -> None:
    for sub in ("queue", "control", "processed"):
        (tmp_path / sub).mkdir()
    transport = f"{fsbroker.__name__}:Transport"
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    producers, consumers, per_producer = 4, 4, 400
    received: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    produced = threading.Event()

    def consume() -> None:
        try:
            with _connection(tmp_path, transport) as conn:
                q = conn.SimpleQueue(queue)
                while True:
                    try:
                        message = q.get(timeout=0.05)
                    except Empty:
                        if produced.is_set():
                            break
                        continue
                    message.ack()
                    with lock:
                        received.append(message.payload["n"])
                q.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    with _connection(tmp_path, transport) as conn:
        conn.SimpleQueue(queue).close()  # the exchange table exists before any producer binds
    makers = [
        subprocess.Popen([sys.executable, "-c", PRODUCER, str(tmp_path), transport, queue, str(k * per_producer), str(per_producer)])
        for k in range(producers)
    ]
    assert [p.wait(timeout=300) for p in makers] == [0] * producers
    produced.set()
    for t in threads:
        t.join()

    assert not errors, errors
    assert sorted(received) == list(range(producers * per_producer))
    assert not [p.name for p in (tmp_path / "queue").iterdir()]  # no drafts or claims left behind


def test_a_message_written_by_the_stock_transport_is_read(tmp_path: Path) -> None:
    for sub in ("queue", "control", "processed"):
        (tmp_path / sub).mkdir()
    queue = f"jobs-{uuid.uuid4().hex[:8]}"  # the transports keep their bindings per process, not per folder
    with _connection(tmp_path, "kombu.transport.filesystem:Transport") as conn:
        conn.SimpleQueue(queue).put({"n": 1})
    with _connection(tmp_path, f"{fsbroker.__name__}:Transport") as conn:
        message = conn.SimpleQueue(queue).get(timeout=1)
        message.ack()
        assert message.payload == {"n": 1}
