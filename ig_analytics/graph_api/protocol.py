"""What ingestion relies on from the Graph API client, as Protocols: the runner and the sync functions are typed
against these, so a fake (tests) or another client can stand in, and a renamed or re-shaped call of
``AccountApi`` / ``GraphApiClient`` fails a test (ig_analytics_tests/test_graph_api_units.py) rather than a sync.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Collection, Mapping, Protocol, Sequence, runtime_checkable

from ig_analytics.graph_api.models import AccountDay, CallStats, Media, Profile
from ig_analytics.graph_api.parsing import is_list_page


@runtime_checkable
class InsightsApi(Protocol):
    """One account's calls (``AccountApi``). ``stats`` counts its requests, retries, skipped and dropped items."""

    ig_user_id: str
    stats: CallStats

    def profile(self) -> Profile: ...

    def account_insights(self, since: date, until: date) -> list[AccountDay]: ...

    def list_media(self, published_since: datetime, include_stories: bool = True) -> list[Media]: ...

    def media_insights(self, media: Sequence[Media], known_rejections: Mapping[str, Collection[str]] | None = None,
                       ) -> dict[str, dict[str, int | float | None]]: ...

    # raw calls, for the calls built on them (graph_api/demographics.py, graph_api/follows.py)
    def get(self, path: str, params: dict[str, str], *, endpoint: str | None = None,
            first_is_retry: bool = False) -> Any: ...

    def fetch_many(self, relative_urls: list[str], is_retry: bool = False,
                   validate: Callable[[Any], bool] = is_list_page) -> list[Any]: ...


@runtime_checkable
class AccountsClient(Protocol):
    """The shared client (``GraphApiClient``): one handle per account."""

    version: str

    def account(self, ig_user_id: str, token: str, login_kind: str = "facebook") -> InsightsApi: ...
