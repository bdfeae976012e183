"""A local SMTP sink for the mail tests: accepts every message on HOST:PORT and writes
each one, raw, to a new file in DIR (written to a temporary name, then renamed, so a
reader never sees half a message).

    python smtp_sink.py HOST PORT DIR
"""

import asyncio
import os
import sys
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        partial = os.path.join(self.directory, f".{name}.tmp")
        with open(partial, "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(partial, os.path.join(self.directory, f"{name}.eml"))
        return "250 Message accepted for delivery"


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Sink(directory), hostname=host, port=port)
    controller.start()
    print(f"listening on {host}:{port}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
