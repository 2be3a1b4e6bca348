"""Instagram Graph API client (plain Python + requests; no Dagster).

    from ig_analytics.graph_api import GraphApiClient
    client = GraphApiClient(base_url="https://graph.facebook.com", version=None)   # or .from_settings(settings)
    acct = client.account(ig_user_id, token)
    acct.profile(); acct.account_insights(since, until); acct.list_media(published_since); acct.media_insights(media)

Behaviour on every error class: docs/graph-api-client.md.
"""

from ig_analytics.graph_api.catalogue import NEWEST_VERSION, MetricCatalogue, resolve_version
from ig_analytics.graph_api.client import LOGGER_NAME, AccountApi, GraphApiClient
from ig_analytics.graph_api.errors import (
    GraphApiError,
    InvalidRequestError,
    MalformedResponseError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
)
from ig_analytics.graph_api.models import AccountDay, CallStats, Media, Profile, SkippedItem
from ig_analytics.graph_api.protocol import AccountsClient, InsightsApi

__all__ = [
    "GraphApiClient",
    "AccountApi",
    "InsightsApi",
    "AccountsClient",
    "Media",
    "AccountDay",
    "Profile",
    "CallStats",
    "SkippedItem",
    "MetricCatalogue",
    "NEWEST_VERSION",
    "resolve_version",
    "LOGGER_NAME",
    "GraphApiError",
    "TokenInvalidError",
    "PermissionDeniedError",
    "ThrottledError",
    "TransientApiError",
    "InvalidRequestError",
    "MalformedResponseError",
]
