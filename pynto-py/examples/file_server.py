"""A remote file server in a few lines: open and read files of another process.

``conn.builtins.open`` is the server's ``open``: the file object it returns lives on the
server, and reading it, iterating it or using it in a ``with`` statement works through the
proxy. Here the server is a child process started with ``pynto.connect_subprocess()``.
"""

import pynto


def main() -> None:
    with pynto.connect_subprocess() as conn:
        os = conn.modules.os
        # A directory and a file that exist on the server's side only.
        directory = conn.modules.tempfile.mkdtemp(prefix="pynto-example-")
        path = os.path.join(directory, "notes.txt")
        with conn.builtins.open(path, "w") as f:
            f.write("first line\nsecond line\n")

        with conn.builtins.open(path) as f:
            print("read remotely:", repr(f.read()))
        with conn.builtins.open(path) as f:
            for number, line in enumerate(f, 1):
                print(f"line {number}: {line.rstrip()}")
        print("directory listing:", list(os.listdir(directory)))
        print("size:", os.path.getsize(path), "bytes")

        conn.modules.shutil.rmtree(directory)
        print("removed:", not os.path.exists(directory))


if __name__ == "__main__":
    main()
