"""A chat server: clients log in with a callback, and the server calls it with messages.

Sending a message is a call on the server (``token.say(...)``); receiving one is the server
calling the function the client gave at login. The server exposes only ``login`` and the
methods of the token it hands out; the client exposes only its callback.
"""

import threading

import pynto

PASSWORDS = {"ann": "apple", "bob": "banana"}


class ChatRoom:
    """The state every connection shares: who is logged in, and how to reach them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: dict[str, object] = {}  # user name -> that user's callback

    def broadcast(self, text: str) -> None:
        with self.lock:
            callbacks = list(self.members.values())
        for callback in callbacks:
            callback(text)


ROOM = ChatRoom()


@pynto.exposed  # every public method of a UserToken is reachable by its holder
class UserToken:
    def __init__(self, name: str, callback) -> None:
        self.name = name
        self.callback = callback
        with ROOM.lock:
            ROOM.members[name] = callback
        ROOM.broadcast(f"* {name} joined")

    def say(self, text: str) -> None:
        ROOM.broadcast(f"[{self.name}] {text}")

    def logout(self) -> None:
        with ROOM.lock:
            if ROOM.members.pop(self.name, None) is None:
                return
        ROOM.broadcast(f"* {self.name} left")


class ChatService(pynto.Service):
    def __init__(self) -> None:
        self.token = None

    def exposed_login(self, user: str, password: str, callback) -> UserToken:
        if PASSWORDS.get(user) != password:
            raise ValueError("wrong user name or password")
        self.token = UserToken(user, callback)
        return self.token

    def on_disconnect(self, conn) -> None:
        if self.token is not None:
            self.token.logout()


def main() -> None:
    with pynto.Server(ChatService, port=0) as server:
        server.start()
        ann_conn = pynto.connect(server.address)
        bob_conn = pynto.connect(server.address)
        with ann_conn, bob_conn:
            ann_inbox: list[str] = []
            bob_inbox: list[str] = []
            ann = ann_conn.root.login("ann", "apple", ann_inbox.append)
            bob = bob_conn.root.login("bob", "banana", bob_inbox.append)
            ann.say("hi bob!")
            bob.say("hello ann")
            bob.logout()
            try:
                ann_conn.root.login("mallory", "guess", ann_inbox.append)
            except ValueError as exc:
                print("mallory:", exc.args[0])
            print("ann received:", *ann_inbox, sep="\n  ")
            print("bob received:", *bob_inbox, sep="\n  ")


if __name__ == "__main__":
    main()
