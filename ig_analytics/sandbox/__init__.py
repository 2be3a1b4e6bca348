"""Local sandbox of the Instagram Graph API: a real HTTP server over deterministic synthetic accounts.

World model (``SandboxWorld``)
    Accounts come from ``AccountSpec`` (``SandboxWorld.demo()``: 3 accounts in UTC, America/New_York,
    Asia/Tokyo; ``SandboxWorld.generate(n, ...)``: many, lazily). Every value is a pure function of
    (seed, account, key) - see ``rng.py`` - so the same seed gives the same world, and nothing is
    generated before it is asked for. ``world.clock`` is the sandbox time (frozen when ``now=`` is given,
    else real time); the spec's ``followers``/``posts`` hold at the world's reference time ``ref_time``.
    * Days: day D is the Pacific-time date D, ending at Pacific midnight (its ``end_time``: D+1 07:00 UTC in
      summer, 08:00 UTC in winter, as Meta's). Followers grow by a net change
      >= 0 per day, and ``followers_total`` (the true total at the end of each day) is exactly consistent with
      it; ``follower_count`` (new follows) = net + ``unfollows`` (0 unless ``AccountSpec.unfollow_rate``; the
      demo's bakery and Tokyo accounts have some), ``follows_and_unfollows`` = follows + unfollows, split
      FOLLOWER / NON_FOLLOWER by ``breakdown=follow_type`` (that reply has only ``breakdowns``, no
      ``total_value.value``, as the live API); both are absent under 100 followers.
      Daily reach < views, accounts_engaged <= reach; a multi-day ``total_value`` of reach /
      accounts_engaged is max(daily) + 35 % of the rest (unique), other metrics sum.
    * Posts (FEED image/carousel/video, REELS) are keyed by local publish date; stories (24 h live) too.
      Lifetime metrics follow a saturating curve; ~2.5 % of posts (and one recent post per account) are
      viral: 15-60x the totals, growing fast from a few hours after publication. Quirks: the oldest
      ``pre_conversion_posts`` fail with subcode 2108006; ~5 % of IMAGE posts reject ``shares``; some FEED
      videos older than 60 days reject ``views``; stories under 5 viewers fail with code 10.
    * Truth for tests: ``world.account_metric(id, metric, day)`` (also ``followers_total``, ``unfollows``), ``world.account_metric_total(id, metric,
      days)``, ``world.media_metric(media_id, metric, at)``.

Served API (``SandboxServer``, see ``api.py``): versions v18.0-v25.0 (newer = v25), version-aware metric
sets (``catalog.py``; ``SandboxWorld(enforce_retirements=True)`` also applies each removal to every older
version once its "enforced on all versions" date has passed on the sandbox clock), /{ig-user-id}, /insights
(time_series/total_value rules, 30-day window, late data: reach/views/impressions/follower_count appear 2 h
after the day ends, the others after 24 h, so today and yesterday are missing; 2-year retention;
follower_count: last 30 days (a window reaching further is refused whole: HTTP 400 "(#100) (follower_count)
metric only supports querying data for the last 30 days excluding the current day"), absent under 100
followers; a since..until window holds the days whose middle,
D 19:00 or 20:00 UTC, lies in it, so 00:00-UTC day windows map to that day), /media and /stories (cursor paging whose
``next`` names graph.facebook.com/v6.0 with the token and ``pretty=0``, as real replies do: a client follows it on
its own host and version; the last page has only ``cursors.before``; field expansion ``insights.metric(...)``), /{media-id}/insights, batch
``POST /`` (max 50), rate-limit headers, error bodies shaped like Meta's. Control API: ``GET
/__sandbox/accounts``, ``GET|POST /__sandbox/clock`` ({"now": iso} | {"advance_seconds": n} | {"frozen":
bool}), ``GET|POST /__sandbox/faults`` (Faults fields, optional "ig_user_id"; merged into the current
ones), ``POST /__sandbox/reset``, ``GET /__sandbox/log``, ``GET|POST /__sandbox/tokens`` (tokens_api.py).

Instagram host: a request with an Instagram-Login token is answered as graph.instagram.com would: ``X-App-Usage``
as ``{"call_volume", "cpu_time"}``, errors of type ``IGApiException`` (token errors stay ``OAuthException``), no
batch. ``AccountSpec.demographics_withheld``: ``{"data": []}`` for demographics and online followers whatever the
size (a large account Meta has not computed).

Tokens (``tokens.py``, ``tokens_api.py``): ``debug_token`` (app token ``APP_ID|APP_SECRET``; ``app_id`` and
``user_id`` as JSON numbers),
``refresh_access_token?grant_type=ig_refresh_token`` (Instagram-Login tokens at least 24 h old and not expired;
the old token keeps working until it expires), ``/me/accounts`` (a Facebook user's Pages, cursor-paged, Pages
without an IG account included; a Page named None is listed without ``name`` and ``access_token``). ``tokens.registry(world)`` issues Instagram-Login tokens of any age, Facebook
users with their Pages and Page tokens, and tokens without some scopes (no ``instagram_manage_insights``: /insights
fails with code 10); issued tokens expire on the sandbox clock.

Replay (``replay.py``): ``ReplayServer(Recording.load(DIR))`` serves the replies a ``sync --record DIR`` wrote
instead of a world (``ig-analytics sandbox --replay DIR``); docs/graph-api-client.md, "Recording and replay".

Fault knobs (``Faults``; ``world.faults`` or per account ``world.account(id).faults``), deterministic
from ``seed`` through a counter-based stream (one draw per HTTP request / batch item):
    latency_ms            sleep in the handler thread (other requests are not blocked)
    transient_error_rate  HTTP 500 code 2 is_transient, or (30 % of those) HTTP 503
    malformed_body_rate   HTTP 200 with a body that is not valid JSON
    truncated_body_rate   HTTP 200 whose connection is closed mid-body (Content-Length not met)
    throttle_after_calls  after N calls for an account: code 80002 (HTTP 400) for throttle_minutes of
                          sandbox time (calling while blocked extends it); BUC header shows the wait
    reduce_data_limit     /media with limit above it: HTTP 500 code 1 "Please reduce the amount of data..."
    short_page_rate       /media pages cut short (after a cursor even empty) while paging.next continues
"""

from ig_analytics.sandbox.account import SandboxAccount
from ig_analytics.sandbox.cli import serve_forever_cli
from ig_analytics.sandbox.clock import SandboxClock
from ig_analytics.sandbox.faults import Faults
from ig_analytics.sandbox.media import SandboxChild, SandboxMedia
from ig_analytics.sandbox.server import RequestRecord, SandboxServer
from ig_analytics.sandbox.world import AccountSpec, SandboxWorld

__all__ = [
    "AccountSpec",
    "Faults",
    "RequestRecord",
    "SandboxAccount",
    "SandboxChild",
    "SandboxClock",
    "SandboxMedia",
    "SandboxServer",
    "SandboxWorld",
    "serve_forever_cli",
]
