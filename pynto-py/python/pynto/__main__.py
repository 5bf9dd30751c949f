"""Command line: ``python -m pynto serve ...`` and ``python -m pynto shell ADDRESS``.

``serve`` runs a server with the interpreter that runs it::

    python -m pynto serve --classic [--host 127.0.0.1] [--port 18812] [--unix PATH] [--stdio]
                          [--token-env VAR] [--tls-cert F --tls-key F [--tls-ca F]]
                          [--announce etcd://HOST:PORT/NAME [--announce-ttl SECONDS]]
                          [-v | -q] [--logfile FILE] [--log-exceptions LEVEL]
    python -m pynto serve --service package.module:ServiceClass [...the same options]

Once it accepts connections it prints ``pynto: serving <classic|ServiceName> on <address>`` to
standard output (to standard error with ``--stdio``, where standard output carries the
protocol) and flushes it. SIGINT and SIGTERM stop it cleanly.

A classic server gives full control of this interpreter to whoever connects, so it only
listens on a loopback address or a Unix socket unless ``--allow-remote-classic`` says otherwise.

Logging goes to standard error (``--logfile FILE`` appends it to FILE), at INFO for ``serve``
(connections opened and closed) and WARNING for ``shell``; ``-v`` shows DEBUG, ``-q`` only
warnings, ``-qq`` only errors. ``--log-exceptions LEVEL`` logs each exception a service raises
while serving (logger ``pynto.service``) at LEVEL (default: debug).

``shell`` opens an interactive console connected to a server, with ``conn``, ``root`` and, on
classic servers, ``modules`` and ``builtins`` bound; Tab completes names, remote attributes
included, and functions typed there can be teleported::

    python -m pynto shell ADDRESS [--token-env VAR] [--tls-ca F] [--tls-cert F --tls-key F]
"""

from __future__ import annotations

import argparse
import code
import importlib
import ipaddress
import linecache
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any, NoReturn, Sequence

import pynto

log = logging.getLogger("pynto.cli")

DEFAULT_PORT = 18812


class UsageError(Exception):
    """A problem with the command line, reported without a traceback (exit status 2)."""


# --------------------------------------------------------------------------- helpers


def _is_loopback(host: str) -> bool:
    """True if every address `host` stands for is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
    )


def _token(var: str | None) -> str | None:
    if var is None:
        return None
    try:
        token = os.environ[var]
    except KeyError:
        raise UsageError(f"--token-env {var}: the environment variable {var} is not set") from None
    if not token:
        raise UsageError(f"--token-env {var}: the environment variable {var} is empty")
    return token


def _load_service(spec: str) -> Any:
    """Import ``package.module:Name`` (``Name`` may be dotted) and return that object."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"--service {spec!r}: expected package.module:ServiceClass")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--service {spec!r}: cannot import {module_name}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"--service {spec!r}: {module_name} has no {attr_path}") from None
    return target


def _service_name(service: Any) -> str:
    if service is pynto.ClassicService:
        return "classic"
    cls = service if isinstance(service, type) else type(service)
    return cls.__name__


def _tls(args: argparse.Namespace) -> Any:
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_ca is not None:
            raise UsageError("--tls-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    return pynto.TLS(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


# --------------------------------------------------------------------------- serve


def serve(args: argparse.Namespace) -> int:
    service = pynto.ClassicService if args.classic else _load_service(args.service)
    name = _service_name(service)
    token = _token(args.token_env)
    tls = _tls(args)
    try:
        limits = pynto.Limits.parse(args.limit) if args.limit else None
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    if args.stdio:
        if args.unix or tls is not None:
            raise UsageError("--stdio cannot be combined with --unix or TLS")
        if args.announce is not None:
            raise UsageError("--stdio cannot be combined with --announce (a stdio server has no address)")
        return _serve_stdio(service, name, token, limits)

    if args.classic and args.unix is None and not _is_loopback(args.host):
        if not args.allow_remote_classic:
            raise UsageError(
                f"refusing to serve classic on {args.host}: a classic server gives full control "
                "of this interpreter to anyone who can connect. Listen on a loopback address "
                "or a Unix socket, use --service, or pass --allow-remote-classic (with --token-env "
                "and TLS) if you really mean it"
            )
        log.warning("serving classic on non-loopback host %s", args.host)

    options: dict[str, Any] = {"tls": tls, "token": token, "limits": limits}
    if args.announce is not None:
        from pynto._discovery import EtcdTarget

        if args.announce_ttl <= 0:
            raise UsageError(f"--announce-ttl must be positive, not {args.announce_ttl}")
        try:
            EtcdTarget.parse(args.announce)
        except ValueError as exc:
            raise UsageError(f"--announce: {exc}") from None
        options["announce"] = args.announce
        options["announce_ttl"] = args.announce_ttl
    if args.unix is not None:
        options["unix"] = args.unix
    else:
        options["host"] = args.host
        options["port"] = args.port

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        server = pynto.Server(service, **options)
    except OSError as exc:
        print(f"pynto: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            server.start()
        except ConnectionError as exc:  # etcd unreachable or refusing the announcement
            print(f"pynto: cannot announce: {exc}", file=sys.stderr)
            return 1
        print(f"pynto: serving {name} on {server.address}", flush=True)
        if args.logfile is not None:  # on the terminal, the line above says it already
            log.info("serving %s on %s", name, server.address)
        # The main thread only waits, so signal handlers run promptly.
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
    log.info("stopped")
    return 0


def _serve_stdio(service: Any, name: str, token: str | None, limits: pynto.Limits | None) -> int:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print(f"pynto: serving {name} on stdio", file=sys.stderr, flush=True)
    try:
        pynto.serve_stdio(service, token=token, limits=limits)
    except KeyboardInterrupt:
        log.info("interrupted, stopping")
    return 0


# --------------------------------------------------------------------------- shell


class ShellConsole(code.InteractiveConsole):
    """The shell's console. It keeps the source of every statement typed into it in
    `linecache`, under a name of its own, so functions defined here have source: tracebacks
    show their lines and ``conn.teleport`` can send them."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__(namespace, filename="<pynto shell>")
        self._inputs = 0

    def runsource(self, source: str, filename: str = "<input>", symbol: str = "single") -> bool:
        self._inputs += 1
        name = f"<pynto shell input {self._inputs}>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        more = super().runsource(source, name, symbol)
        if more:  # incomplete: the next push compiles the whole statement again
            del linecache.cache[name]
            self._inputs -= 1
        return more


def _enable_completion(namespace: dict[str, Any]) -> None:
    """Tab completes names, and attributes of remote objects (through ``dir()`` on proxies)."""
    try:
        import readline
        import rlcompleter
    except ImportError:  # no readline on this platform: a console without completion
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")


def _client_tls(args: argparse.Namespace) -> Any:
    if args.tls_ca is None and args.tls_cert is None and args.tls_key is None:
        return None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    return pynto.TLS(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)


def shell(args: argparse.Namespace) -> int:
    token = _token(args.token_env)
    tls = _client_tls(args)
    if tls is not None and not args.address.lower().startswith("tls://"):
        raise UsageError("the --tls-* options need a tls://host:port address")
    try:
        conn = pynto.connect(args.address, token=token, tls=tls, timeout=args.timeout)
    except (OSError, pynto.ProtocolError, ValueError) as exc:
        print(f"pynto: cannot connect to {args.address}: {exc}", file=sys.stderr)
        return 1
    with conn:
        namespace: dict[str, Any] = {"pynto": pynto, "conn": conn, "root": conn.root}
        if conn.peer_service == "classic":
            namespace["modules"] = conn.modules
            namespace["builtins"] = conn.builtins
            kind = "classic"
        else:
            kind = "service"
        names = ", ".join(n for n in ("conn", "root", "modules", "builtins") if n in namespace)
        banner = (
            f"pynto shell: connected to {args.address} ({kind} server).\n"
            f"Bound names: {names}. Tab completes. Leave with Ctrl-D."
        )
        _enable_completion(namespace)
        ShellConsole(namespace).interact(banner=banner, exitmsg="")
    return 0


# --------------------------------------------------------------------------- main


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _add_verbosity(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the subcommands too, so `python -m pynto serve -v` works; counts add up.
    default = 0 if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="more log output (-v: DEBUG)")
    parser.add_argument("-q", "--quiet", action="count", default=default,
                        help="less log output (-q: warnings only, -qq: errors only)")
    parser.add_argument("--logfile", metavar="FILE", default=None if top else argparse.SUPPRESS,
                        help="append the log to FILE instead of standard error")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pynto",
        description="Serve this interpreter's objects, or open a console on a pynto server.",
    )
    _add_verbosity(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve_cmd = commands.add_parser(
        "serve",
        help="run a pynto server",
        description="Run a pynto server. Prints 'pynto: serving <what> on <address>' once ready.",
    )
    _add_verbosity(serve_cmd, top=False)
    what = serve_cmd.add_mutually_exclusive_group(required=True)
    what.add_argument("--classic", action="store_true",
                      help="full access to this interpreter (trusted peers only)")
    what.add_argument("--service", metavar="MODULE:CLASS",
                      help="serve this Service class (one instance per connection)")
    serve_cmd.add_argument("--host", default="127.0.0.1",
                           help="address to listen on, IPv4 or IPv6 (default: 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, default=DEFAULT_PORT,
                           help=f"TCP port; 0 picks a free one (default: {DEFAULT_PORT})")
    serve_cmd.add_argument("--unix", metavar="PATH", help="listen on this Unix socket instead")
    serve_cmd.add_argument("--stdio", action="store_true",
                           help="serve one connection over standard input and output")
    serve_cmd.add_argument("--token-env", metavar="VAR",
                           help="require the shared secret held by this environment variable")
    serve_cmd.add_argument("--tls-cert", metavar="FILE", help="server certificate (PEM)")
    serve_cmd.add_argument("--tls-key", metavar="FILE", help="server private key (PEM)")
    serve_cmd.add_argument("--tls-ca", metavar="FILE",
                           help="require client certificates signed by this CA (PEM)")
    serve_cmd.add_argument("--announce", metavar="etcd://HOST:PORT/NAME",
                           help="register this server under NAME in etcd while it serves")
    serve_cmd.add_argument("--announce-ttl", metavar="SECONDS", type=float, default=10.0,
                           help="lease of the announcement: a dead server stays listed at most "
                                "this long (default: 10)")
    serve_cmd.add_argument("--allow-remote-classic", action="store_true",
                           help="let --classic listen on a non-loopback address")
    serve_cmd.add_argument("--limit", metavar="NAME=VALUE", action="append", default=[],
                           help="a pynto.Limits field, e.g. --limit max_workers=64 "
                                "--limit write_timeout=10 (repeatable)")
    serve_cmd.add_argument("--log-exceptions", metavar="LEVEL", choices=sorted(_LEVELS),
                           default="debug",
                           help="log exceptions raised by the service at this level "
                                "(debug, info, warning or error; default: debug)")
    serve_cmd.set_defaults(handler=serve)

    shell_cmd = commands.add_parser(
        "shell",
        help="interactive console connected to a server",
        description="An interactive Python console with conn, root and (classic) modules and "
                    "builtins bound. Tab completes names, remote ones included.",
    )
    _add_verbosity(shell_cmd, top=False)
    shell_cmd.add_argument("address", help="host:port, tcp://host:port, tls://... or unix:///path")
    shell_cmd.add_argument("--token-env", metavar="VAR",
                           help="authenticate with the shared secret held by this variable")
    shell_cmd.add_argument("--tls-ca", metavar="FILE",
                           help="CA certificates (PEM) the server's certificate must chain to "
                                "(default for tls:// addresses: the system's trusted CAs)")
    shell_cmd.add_argument("--tls-cert", metavar="FILE", help="client certificate (PEM)")
    shell_cmd.add_argument("--tls-key", metavar="FILE", help="client private key (PEM)")
    shell_cmd.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                           help="give up connecting after this long (default: 10)")
    shell_cmd.set_defaults(handler=shell)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    verbosity = args.verbose - args.quiet
    if args.command == "shell":
        verbosity -= 1  # a console shows warnings, not every connection
    level = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}.get(
        verbosity, logging.DEBUG if verbosity > 1 else logging.ERROR)
    handler: logging.Handler
    if args.logfile is not None:
        handler = logging.FileHandler(args.logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    exceptions = getattr(args, "log_exceptions", None)
    if exceptions is not None:
        from . import _pynto

        _pynto._set_service_exception_level(_LEVELS[exceptions])


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _configure_logging(args)
    except OSError as exc:
        _usage_error(parser, f"--logfile {args.logfile}: {exc}")
    try:
        return args.handler(args)
    except UsageError as exc:
        _usage_error(parser, str(exc))


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
