"""The embedded broker: kombu's filesystem transport, with messages that appear and are taken whole.

kombu's filesystem channel creates a message file, then locks it and writes it, while a consumer
lists the folder and moves and reads a file without taking the lock. A consumer that comes between
the create and the write reads an empty file: the message is lost and the consumer dies of a JSON
error (the in-process workers of `relctl run` share one process, so a thread switch there is enough).
It also moves a taken message to the temp folder, which is a copy and a delete when that folder is
on another filesystem, so that two consumers could both take one message.

Here a message is written under a name no consumer matches and renamed into place once whole, and a
consumer claims one by renaming it within the folder, which only one of them can do. The folder
layout and message names are kombu's own, so a queue written by either reads with the other.
"""

from __future__ import annotations

import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps, loads

_DRAFT = ".draft"
_CLAIMED = ".claimed-"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        draft = final + _DRAFT  # ends in .draft: no consumer's pattern matches it
        try:
            with open(draft, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(draft, final)
        except OSError as exc:
            try:
                os.unlink(draft)
            except OSError:
                pass
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        folder = self.data_folder_in
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(folder, f"{_CLAIMED}{uuid.uuid4().hex}-{name}")
            try:
                os.rename(os.path.join(folder, name), claimed)  # only one consumer wins this
            except OSError:
                continue  # another consumer took it first
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
            except OSError as exc:
                raise filesystem.ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            if self.store_processed:
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.unlink(claimed)
            return loads(payload.decode())
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make `filesystem://` broker URLs use this transport, in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
