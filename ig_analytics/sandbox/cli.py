"""``serve_forever_cli``: the sandbox as a process (``ig-analytics sandbox``, ``python -m ig_analytics.sandbox``)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from ig_analytics.sandbox.replay import Recording, ReplayError, ReplayServer
from ig_analytics.sandbox.server import SandboxServer
from ig_analytics.sandbox.tokens import registry
from ig_analytics.sandbox.world import SandboxWorld
from ig_analytics.terminal_text import printable

REPLAY_TOKEN = "replay-token"  # a replay answers whatever token it is sent: secrets were never recorded


def serve_forever_cli(port: int, seed: int = 7, n_accounts: int | None = None, host: str = "127.0.0.1",
                      replay_dir: str | None = None) -> None:
    """Serve the demo world (or ``n_accounts`` generated ones, or the recording in ``replay_dir``) until
    SIGINT/SIGTERM.

    Prints one JSON line per account to stdout: {"ig_user_id": ..., "username": ..., "token": ...}, then
    {"facebook_user_token": ...}.
    The clock runs in real time (move it with POST /__sandbox/clock). Raises ReplayError for a bad recording.
    """
    if replay_dir is not None:
        recording = Recording.load(replay_dir)
        server: SandboxServer = ReplayServer(recording, host=host, port=port, on_unrecorded=_warn)
        accounts = [(ig_user_id, username, REPLAY_TOKEN) for ig_user_id, username in recording.accounts()]
        facebook_token = REPLAY_TOKEN
        banner = f"sandbox replaying {recording.describe()}, serving"
    else:
        world = SandboxWorld.demo(seed=seed) if n_accounts is None else SandboxWorld.generate(n_accounts, seed=seed)
        server = SandboxServer(world, host=host, port=port)
        accounts = [(a.ig_user_id, a.username, a.token) for a in world.accounts]
        facebook_token = registry(world).default_facebook_user_token()
        banner = "sandbox Graph API serving"
    stop = threading.Event()
    server.start()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not in the main thread: rely on KeyboardInterrupt / the caller
            pass
    try:
        for ig_user_id, username, token in accounts:
            sys.stdout.write(json.dumps({"ig_user_id": ig_user_id, "username": username, "token": token}) + "\n")
        # a Facebook user whose Pages link every account (plus one Page without one), for `accounts discover`
        sys.stdout.write(json.dumps({"facebook_user_token": facebook_token}) + "\n")
        sys.stdout.flush()
        print(f"{banner} on {server.base_url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _warn(message: str) -> None:
    print(printable(message, 2000), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ig_analytics.sandbox", description="Local sandbox Graph API")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=None, help="serve N generated accounts instead of the demo")
    parser.add_argument("--replay", default=None, metavar="DIR", help="serve the replies of a `sync --record DIR`")
    args = parser.parse_args(argv)
    try:
        serve_forever_cli(args.port, seed=args.seed, n_accounts=args.accounts, host=args.host, replay_dir=args.replay)
    except ReplayError as exc:
        parser.error(str(exc))
    return 0
