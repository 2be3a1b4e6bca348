"""What an access token may look like, checked at the door (``accounts add``, ``accounts discover``, refresh
replies) and before a stored one is sent.

Meta's tokens are printable ASCII without whitespace (``EAA...``, ``IGAA...``, ``app_id|secret``). A token with a
line break or a space cannot travel in an ``Authorization`` header: requests refuses it with an ``InvalidHeader``
whose message quotes the header, token included. Refusing such text here keeps it out of the vault, the logs and
every error message. The message names the rule and where it broke, never the token itself.
"""

from __future__ import annotations

MIN_TOKEN_LEN = 8
MAX_TOKEN_LEN = 2048  # Meta's tokens are 150-400 characters; 2 KB leaves room and refuses a pasted file


class TokenFormatError(ValueError):
    """The text is not an access token; the message says which rule it breaks (without the token)."""


def _describe(ch: str) -> str:
    names = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
    if ch in names:
        return names[ch]
    return f"the character U+{ord(ch):04X}"


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be an access token (None: it can)."""
    if not token:
        return "the access token is empty"
    if not MIN_TOKEN_LEN <= len(token) <= MAX_TOKEN_LEN:
        return (f"the access token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters long, not {len(token):,}: "
                "paste the token alone")
    for position, ch in enumerate(token, start=1):
        if not "\x21" <= ch <= "\x7e":
            return (f"the access token must be printable ASCII without spaces or line breaks, but has "
                    f"{_describe(ch)} at character {position}: paste the token alone, on one line")
    return None


def check_token(token: str) -> str:
    """``token`` itself, or TokenFormatError naming the rule it breaks."""
    problem = token_problem(token)
    if problem is not None:
        raise TokenFormatError(problem)
    return token


def from_stdin_line(line: str) -> str:
    """A token read from standard input: one trailing newline (``\\n`` or ``\\r\\n``) removed, nothing else."""
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith("\n") else line


def unsendable_token(ig_user_id: str | None, endpoint: str | None):
    """The error for a stored token that no request can carry (requests' ``InvalidHeader``, whose message quotes
    the token): not transient, so never retried, and it says what to do."""
    from ig_analytics.graph_api.errors import TokenInvalidError

    account = ig_user_id or "ACCOUNT_ID"
    return TokenInvalidError(
        f"The stored access token of account {account} has a line break, space or other character a token cannot "
        "have (an older version accepted it), so no request can carry it. Reconnect the account: ig-analytics "
        f"accounts add --ig-user-id {account} --token -  (the token alone on standard input)",
        ig_user_id=ig_user_id, endpoint=endpoint)
