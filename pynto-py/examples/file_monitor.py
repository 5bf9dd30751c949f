"""Events pushed by a server: a file monitor calls the client back whenever a file changes.

The client hands the server a callback and then just waits. The server's own monitor thread
calls that callback; pynto delivers such calls to the client on its own worker threads, so the
client needs no thread of its own to receive them.
"""

import os
import tempfile
import threading

import pynto


@pynto.exposed
class Monitor:
    """Polls one file's os.stat() and reports changes until stopped."""

    def __init__(self, path: str, callback, interval: float) -> None:
        self.path = path
        self.callback = callback
        self.interval = interval
        self.stopped = threading.Event()
        # The state changes are measured against, taken before watch() returns: a change made
        # right after it is reported however late the thread starts.
        self.last = os.stat(path)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = self.last
        while not self.stopped.wait(self.interval):
            current = os.stat(self.path)
            if (current.st_mtime_ns, current.st_size) != (last.st_mtime_ns, last.st_size):
                last = current
                try:
                    self.callback(self.path, current.st_size)
                except pynto.ConnectionClosed:
                    return  # the client went away

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


class FileMonitorService(pynto.Service):
    def __init__(self) -> None:
        self.monitors: list[Monitor] = []

    def exposed_watch(self, path: str, callback, interval: float = 0.02) -> Monitor:
        monitor = Monitor(path, callback, interval)
        self.monitors.append(monitor)
        return monitor

    def on_disconnect(self, conn) -> None:
        for monitor in self.monitors:
            monitor.stopped.set()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, \
            pynto.Server(FileMonitorService, port=0) as server:
        server.start()
        path = os.path.join(directory, "watched.txt")
        with open(path, "w") as f:
            f.write("")

        changed = threading.Event()
        sizes: list[int] = []

        def on_change(changed_path: str, size: int) -> None:
            # Runs on a pynto worker thread while the main thread waits below.
            sizes.append(size)
            print(f"changed: {os.path.basename(changed_path)} is now {size} bytes")
            changed.set()

        with pynto.connect(server.address) as conn:
            monitor = conn.root.watch(path, on_change)
            for text in ("hello", ", world", "!\n"):
                changed.clear()
                with open(path, "a") as f:
                    f.write(text)
                # Idle: no polling and no thread of ours, just waiting for the event.
                if not changed.wait(10):
                    raise SystemExit("no change event arrived")
            monitor.stop()
        print("sizes reported:", sizes)


if __name__ == "__main__":
    main()
