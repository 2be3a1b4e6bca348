"""The tables of schema ``instagram``, column by column: the one source of truth for the data dictionary's column
tables (docs/data-dictionary.md, regenerated with ``python -m ig_analytics.storage.tables --write``) and for the
``dagster/column_schema`` metadata of the assets (built from it in ``defs/catalog.py``; names, types and
descriptions shown in the Dagster UI).
``ig_analytics_tests/test_table_metadata.py`` checks both against the migrated database."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path


DATA_DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL type as written in the migrations (timestamptz, double precision, text[] ...)
    description: str
    key: bool = False  # part of the primary key


@dataclass(frozen=True)
class Table:
    name: str
    grain: str  # "one row per ..."
    columns: list[Column]
    description: str = ""  # what the table holds, in one sentence (its COMMENT in the database)
    kind: str = "table"  # or "view"


TABLES: dict[str, Table] = {t.name: t for t in [
    Table('accounts', 'one row per connected account', [
        Column('ig_user_id', 'text', 'Instagram business account id', key=True),
        Column('username', 'text', '@handle (from `accounts add` or the profile)'),
        Column('timezone', 'text', 'IANA zone used for best posting times and per-day roll-ups (default UTC)'),
        Column('status', 'text', '`active`, `needs_reauth` (token rejected / permission missing: skipped until `accounts add`), `disabled`'),
        Column('status_reason', 'text', "why the status changed (the API's error, redacted, with what to do)"),
        Column('status_changed_at', 'timestamptz', 'when the status last changed'),
        Column('token_ciphertext', 'bytea', 'Fernet-encrypted access token; never the plain token'),
        Column('token_expires_at', 'timestamptz', 'expiry: from `debug_token` (with `IG_APP_ID` + `IG_APP_SECRET`) or a refresh, else `accounts add --token-expires-at`; NULL = unknown, or never when `token_checked_at` is set; alerts 7 days ahead and once at expiry'),
        Column('followers_total', 'bigint', 'follower total from the newest profile snapshot'),
        Column('media_count', 'bigint', 'number of posts from the newest profile snapshot'),
        Column('profile_synced_at', 'timestamptz', 'time of that snapshot'),
        Column('created_at', 'timestamptz', 'when the account was first added'),
        Column('updated_at', 'timestamptz', 'when the row last changed'),
        Column('login_kind', 'text', '`facebook` (Facebook Login, graph.facebook.com) or `instagram` (Instagram Login, graph.instagram.com, refreshed daily)'),
        Column('token_scopes', 'text[]', 'permissions the token grants (`debug_token`); NULL = not read'),
        Column('token_missing_scopes', 'text[]', 'required permissions it lacks (e.g. `{instagram_manage_insights}`); empty = none; NULL = not read'),
        Column('token_data_access_expires_at', 'timestamptz', 'after it Meta returns no data until the user logs in again, even with a valid token'),
        Column('token_issued_at', 'timestamptz', "the current token's issue time (`debug_token`, a refresh, else when it was stored)"),
        Column('token_refreshed_at', 'timestamptz', 'last successful Instagram-Login refresh'),
        Column('token_checked_at', 'timestamptz', 'last `debug_token` read'),
        Column('token_refresh_error', 'text', 'why the last refresh failed (redacted; the old token was kept); NULL after a success'),
        Column('facebook_page_id', 'text', 'id of the Facebook Page the account was found through (`accounts discover`)'),
        Column('facebook_page_name', 'text', 'name of that Page'),
    ]),
    Table('account_profile_snapshots', 'one row per account and profile read', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('captured_at', 'timestamptz', 'time of the profile read', key=True),
        Column('followers_total', 'bigint', "the profile's follower total then"),
        Column('follows_total', 'bigint', 'accounts the profile followed then'),
        Column('media_count', 'bigint', "the profile's number of posts then"),
    ]),
    Table('account_insights_daily', 'one row per account and day', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', "the day the values cover: a daily value with `end_time` E is stored under E − 1 day (Meta's days end at 07:00 UTC, Pacific midnight)", key=True),
        Column('reach', 'bigint', 'unique accounts reached that day. **Never sum across days** (unique counts); reports use a `total_value` or say "daily sum"'),
        Column('views', 'bigint', 'times content was displayed (v22+; summable)'),
        Column('impressions', 'bigint', 'retired in v22: NULL on newer API versions'),
        Column('follower_count', 'bigint', "**new** followers that day (Meta's name); only the last 30 days and accounts with ≥ 100 followers"),
        Column('followers_total', 'bigint', "follower total at the **end of that day** (date + 1, 07:00 UTC), from the first sync on: read from a profile snapshot taken within an hour after the day ended, or rebuilt from the current total and the later days' follows and unfollows (docs/analytics.md, section 0); NULL where the API's 30 days of follows do not reach"),
        Column('profile_views', 'bigint', 'profile visits that day; retired as a time series in v21: NULL on newer versions'),
        Column('website_clicks', 'bigint', "taps on the profile's website link that day; retired as a time series in v21: NULL on newer versions"),
        Column('accounts_engaged', 'bigint', 'accounts that interacted with the content that day (`total_value`, one day per call)'),
        Column('total_interactions', 'bigint', 'likes, comments, saves, shares and replies that day (`total_value`)'),
        Column('likes', 'bigint', "likes on the account's content that day (`total_value`)"),
        Column('comments', 'bigint', 'comments that day (`total_value`)'),
        Column('saves', 'bigint', 'saves that day (`total_value`)'),
        Column('shares', 'bigint', 'shares that day (`total_value`)'),
        Column('replies', 'bigint', 'story replies that day (`total_value`)'),
        Column('reposts', 'bigint', 'reposts that day (`total_value`)'),
        Column('follows_and_unfollows', 'bigint', "follows plus unfollows that day (`total_value`; Meta's definition, may be net on some versions)"),
        Column('profile_links_taps', 'bigint', "taps on the profile's contact and link buttons that day (`total_value`)"),
        Column('api_version', 'text', 'Graph API version that produced the row'),
        Column('synced_at', 'timestamptz', 'last write. A later sync re-fetches the last 3 days (late data); a NULL never overwrites a measured value'),
        Column('unfollows', 'bigint', 'accounts that unfollowed that day: `measured_unfollows` where served, else `follows_and_unfollows − follower_count`; 0 on API versions without `follows_and_unfollows`; NULL while not reported. `unfollows_source` says which'),
        Column('followers_total_source', 'text', "`observed` (a profile snapshot at the day's end) or `derived` (rebuilt); a derived value never overwrites an observed one"),
        Column('measured_follows', 'bigint', "follows that day: `FOLLOWER` of `follows_and_unfollows` asked with `breakdown=follow_type` (one day per call); NULL where not served (under 100 followers, versions without it, not reported yet)"),
        Column('measured_unfollows', 'bigint', "unfollows that day: `NON_FOLLOWER` of the same call"),
        Column('unfollows_source', 'text', '`measured` (`measured_unfollows`), `inferred` (`follows_and_unfollows − follower_count`) or `assumed_zero` (API versions without `follows_and_unfollows`); NULL while `unfollows` is unknown'),
    ]),
    Table('media', 'one row per post or story', [
        Column('media_id', 'text', 'Instagram id of the post or story', key=True),
        Column('ig_user_id', 'text', 'the owning account'),
        Column('media_type', 'text', 'IMAGE, VIDEO, CAROUSEL_ALBUM'),
        Column('media_product_type', 'text', 'FEED, REELS, STORY, AD'),
        Column('caption', 'text', 'the caption as last listed'),
        Column('permalink', 'text', 'link to the post on instagram.com'),
        Column('published_at', 'timestamptz', "the post's `timestamp`"),
        Column('like_count', 'bigint', 'likes at the last listing (object field; hidden counts stay NULL)'),
        Column('comments_count', 'bigint', 'comments at the last listing (object field)'),
        Column('insights_unavailable_reason', 'text', 'set when insights can never be read (posted before the business conversion, subcode 2108006): not asked again'),
        Column('rejected_metrics', 'text[]', 'metrics the API rejected for this post (code 100 naming them) under `rejected_metrics_api_version`: later captures with that version ask without them'),
        Column('rejected_metrics_api_version', 'text', 'the Graph API version `rejected_metrics` was learnt under; another version asks every metric again'),
        Column('first_seen_at', 'timestamptz', 'when a sync first listed the post'),
        Column('updated_at', 'timestamptz', 'when a listed value last changed'),
    ]),
    Table('media_insights_snapshots', 'one row per post and capture slot', [
        Column('media_id', 'text', 'the post (`instagram.media.media_id`)', key=True),
        Column('captured_at', 'timestamptz', 'the capture slot: start of the hourly partition the values were read in', key=True),
        Column('fetched_at', 'timestamptz', 'when the values were actually read'),
        Column('ig_user_id', 'text', 'owner (denormalized for per-account scans)'),
        Column('reach', 'bigint', 'lifetime unique accounts that saw the post, as of the capture; NULL when not reported'),
        Column('views', 'bigint', 'lifetime times the post was displayed, as of the capture; NULL when not reported'),
        Column('impressions', 'bigint', 'lifetime times displayed (API versions before v22), as of the capture; NULL when not reported'),
        Column('likes', 'bigint', 'lifetime likes (falls back to the listed like count), as of the capture; NULL when not reported'),
        Column('comments', 'bigint', 'lifetime comments (falls back to the listed comment count), as of the capture; NULL when not reported'),
        Column('saved', 'bigint', 'lifetime saves (`saved` for posts, `saves` for accounts), as of the capture; NULL when not reported'),
        Column('shares', 'bigint', 'lifetime shares, as of the capture; NULL when not reported'),
        Column('total_interactions', 'bigint', 'lifetime likes, comments, saves, shares and replies, as of the capture; NULL when not reported'),
        Column('video_views', 'bigint', 'lifetime video views (older API versions), as of the capture; NULL when not reported'),
        Column('plays', 'bigint', 'lifetime reel plays (older API versions), as of the capture; NULL when not reported'),
        Column('follows', 'bigint', 'lifetime accounts that followed from the post, as of the capture; NULL when not reported'),
        Column('profile_visits', 'bigint', 'lifetime profile visits from the post, as of the capture; NULL when not reported'),
        Column('replies', 'bigint', 'lifetime story replies, as of the capture; NULL when not reported'),
        Column('reposts', 'bigint', 'lifetime reposts, as of the capture; NULL when not reported'),
        Column('avg_watch_time_ms', 'bigint', 'lifetime reels: average watch time in ms (`ig_reels_avg_watch_time`), as of the capture; NULL when not reported'),
        Column('total_watch_time_ms', 'bigint', 'lifetime reels: total watch time in ms (`ig_reels_video_view_total_time`), as of the capture; NULL when not reported'),
        Column('other_metrics', 'jsonb', 'metrics without a column (e.g. `navigation`, `reels_skip_rate`)'),
        Column('api_version', 'text', 'Graph API version that produced the row'),
    ]),
    Table('media_engagement', 'one row per post (from its newest snapshot)', [
        Column('media_id', 'text', 'the post', key=True),
        Column('ig_user_id', 'text', 'the owning account'),
        Column('captured_at', 'timestamptz', 'the snapshot used'),
        Column('engagement', 'bigint', '`total_interactions` when reported, else likes + comments + saved + shares (NULL parts count as 0 only when one part is known)'),
        Column('engagement_rate_reach', 'double precision', 'engagement / reach × 100'),
        Column('engagement_rate_views', 'double precision', 'engagement / views × 100 (impressions on versions without views; `views_basis` says which)'),
        Column('engagement_rate_followers', 'double precision', 'engagement / followers at publish time × 100 (`followers_at_publish`)'),
        Column('like_rate', 'double precision', 'likes / reach × 100'),
        Column('comment_rate', 'double precision', 'comments / reach × 100'),
        Column('save_rate', 'double precision', 'saves / reach × 100'),
        Column('share_rate', 'double precision', 'shares / reach × 100'),
        Column('computed_at', 'timestamptz', "when the row's values last changed (recomputed for new snapshots and new follower history; unchanged rows are not rewritten)"),
        Column('published_at', 'timestamptz', 'when the post was published'),
        Column('reach', 'bigint', "the snapshot's reach (denominator of the reach rates)"),
        Column('views', 'bigint', "the snapshot's views"),
        Column('impressions', 'bigint', "the snapshot's impressions (API versions before v22)"),
        Column('views_basis', 'text', '`views` or `impressions`: which one `engagement_rate_views` divides by'),
        Column('followers_at_publish', 'bigint', '`account_insights_daily.followers_total` at the end of the day before publication (API day convention); NULL where the follower history does not reach'),
        Column('performance_score', 'double precision', 'one 0-100 score per post: min(100, 0.5 × engagement / views × 100 + 0.3 × saved / views × 100 + 0.2 × reach / views × 100), views standing in for impressions'),
    ]),
    Table('account_engagement_daily', 'one row per account and day of publication (account timezone)', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', "day of publication in the account's timezone", key=True),
        Column('posts', 'bigint', 'posts (FEED and REELS; stories excluded) published that day'),
        Column('engagement', 'bigint', "summed engagement of the day's posts whose engagement and reach are both known (reach > 0)"),
        Column('reach', 'bigint', 'summed reach of the same posts (post reach, not unique accounts)'),
        Column('engagement_rate_reach', 'double precision', 'sum(engagement) / sum(reach) × 100 over the same posts: equals engagement / reach × 100 of the row'),
        Column('computed_at', 'timestamptz', 'when the row was computed'),
    ]),
    Table('trending_posts', 'one row per account, evaluation and rank', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('as_of', 'timestamptz', 'evaluation time: the hourly capture slot', key=True),
        Column('rank', 'integer', '1 = most trending at `as_of`', key=True),
        Column('media_id', 'text', 'the trending post'),
        Column('score', 'double precision', 'robust z-score with recency decay, by `method` (docs/analytics.md, "Trending")'),
        Column('weighted_score', 'double precision', 'the older weighted score (likes, comments, saves, shares), kept for comparison'),
        Column('details', 'jsonb', 'inputs of the score (gain or expected engagement, baseline median/MAD, age)'),
        Column('method', 'text', "`same_age_growth` (engagement gained in the last hours against the account's past posts at the same age) or `cross_sectional` (engagement at its age against a curve fitted to the account's other posts' current totals: used until a post has a curve from publication)"),
        Column('engagement_rate', 'double precision', "engagement / reach × 100 of the post's newest snapshot"),
        Column('reach', 'bigint', "reach of the post's newest snapshot"),
    ]),
    Table('best_posting_times', 'one row per account, ISO weekday and hour (account timezone)', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('weekday', 'smallint', "ISO weekday of publication in the account's timezone: 1 = Monday … 7 = Sunday", key=True),
        Column('hour', 'smallint', "hour of publication (0-23) in the account's timezone", key=True),
        Column('posts', 'bigint', 'posts in the slot (lookback window, docs/analytics.md)'),
        Column('avg_engagement_rate_reach', 'double precision', "mean of the posts' engagement_rate_reach"),
        Column('shrunk_engagement_rate_reach', 'double precision', "shrunk toward the account's mean for thin slots"),
        Column('computed_at', 'timestamptz', 'when the row was computed'),
        Column('reliable', 'boolean', 'slot has at least the minimum number of posts'),
        Column('account_avg_engagement_rate_reach', 'double precision', "the account's mean (the shrinkage target)"),
    ]),
    Table('performance_reports', 'one row per account, kind and period', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('period_start', 'date', 'first day of the period (account timezone)', key=True),
        Column('period_end', 'date', 'last day of the period', key=True),
        Column('kind', 'text', '`rolling_7d` (daily asset), `weekly` (Mon-Sun), `on_demand` (`ig-analytics report`)', key=True),
        Column('generated_at', 'timestamptz', 'when the report was written'),
        Column('report', 'jsonb', "the story's PerformanceReport in snake_case: period, account_metrics (follower_growth with new_followers and unfollows), content_metrics (total_posts without stories, total_stories, stories), engagement, trends (with method, engagement_rate, reach), best_posting_times, audience (newest demographics snapshot of the period), followers_online; every field: docs/analytics.md, section 5"),
        Column('html_path', 'text', 'the self-contained HTML file under `IG_ANALYTICS_HOME/reports/`'),
    ]),
    Table('audience_demographics', 'one row per account, day, metric, breakdown and key', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', 'the UTC day whose end the picture shows (taken at 02:20 UTC the next day)', key=True),
        Column('metric', 'text', '`follower_demographics` or `engaged_audience_demographics`', key=True),
        Column('breakdown', 'text', '`age`, `gender` (the margins of the crossed picture in `audience_age_gender`, sums over the other dimension; asked on their own only where an API version rejects the crossed breakdown), `country` or `city`', key=True),
        Column('key', 'text', "the breakdown's value, e.g. `25-34`, `F` (gender `F`, `M` or `U` unknown), `US`, `Paris, Ile-de-France`", key=True),
        Column('value', 'bigint', "accounts. Only the top 45 keys and only people with known demographics: a breakdown's values add up to less than the follower total"),
        Column('timeframe', 'text', 'the timeframe asked: `this_month` (last 30 days) for the engaged audience; NULL for followers (none asked)'),
        Column('api_version', 'text', 'Graph API version that produced the row'),
        Column('fetched_at', 'timestamptz', 'when the picture was read'),
    ]),
    Table('audience_age_gender', 'one row per account, day, metric, age range and gender (the crossed picture, one `breakdown=age,gender` call; the view `audience_pictures` shows it with the other breakdowns as breakdown `age,gender`, key `<age>|<gender>`)', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', 'as in audience_demographics', key=True),
        Column('metric', 'text', 'as in audience_demographics', key=True),
        Column('age', 'text', 'the age range, e.g. `18-24`, `65+`', key=True),
        Column('gender', 'text', '`F`, `M` or `U` (unknown)', key=True),
        Column('value', 'bigint', 'accounts with that age and gender; only people with known demographics'),
        Column('timeframe', 'text', 'as in audience_demographics'),
        Column('api_version', 'text', 'Graph API version that produced the row'),
        Column('fetched_at', 'timestamptz', 'when the picture was read'),
    ]),
    Table('audience_demographics_status', 'one row per account, day, metric and breakdown', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', 'as in audience_demographics', key=True),
        Column('metric', 'text', 'as in audience_demographics', key=True),
        Column('breakdown', 'text', 'as in audience_demographics', key=True),
        Column('status', 'text', '`ok`; `not_available` (Meta returns nothing under 100 followers or engagements: not a failure); `rejected` (this API version refuses the breakdown or timeframe; `reason` says how)'),
        Column('reason', 'text', "why not `ok` (Meta's message, redacted)"),
        Column('timeframe', 'text', 'the timeframe asked (NULL for followers)'),
        Column('followers_total', 'bigint', "the profile's follower count at fetch time (the check compares the follower shares to it)"),
        Column('api_version', 'text', 'Graph API version asked'),
        Column('fetched_at', 'timestamptz', 'when it was read'),
    ]),
    Table('online_followers', 'one row per account and hour', [
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('hour_start', 'timestamptz', "the hour's start: the API's hour key h of the day that ends at `end_time` is `end_time` - 24 h + h hours", key=True),
        Column('followers_online', 'bigint', "followers online during that hour (Meta's `online_followers`: API versions up to v24 only, accounts with 100+ followers, the last 30 days)"),
        Column('api_version', 'text', 'Graph API version that produced the row'),
        Column('fetched_at', 'timestamptz', 'when it was read (a later read of the same hour replaces the value)'),
    ]),
    Table('media_comments', "one row per comment or reply on one of the account's posts", description="Comments and replies on the accounts' own posts; text and usernames blanked after IG_ANALYTICS_COMMENT_TEXT_DAYS", columns=[
        Column('comment_id', 'text', 'the comment id', key=True),
        Column('media_id', 'text', 'the post commented on (`instagram.media.media_id`)'),
        Column('ig_user_id', 'text', 'the account owning the post'),
        Column('parent_id', 'text', 'the top-level comment this replies to; NULL for a top-level comment'),
        Column('username', 'text', "the commenter's @handle; NULL after `IG_ANALYTICS_COMMENT_TEXT_DAYS` (personal data of a non-user)"),
        Column('text', 'text', 'the comment; NULL after `IG_ANALYTICS_COMMENT_TEXT_DAYS` days (default 90)'),
        Column('like_count', 'bigint', 'likes on the comment when last read'),
        Column('hidden', 'boolean', 'hidden by the account (visible to the owner only)'),
        Column('published_at', 'timestamptz', 'when it was written'),
        Column('is_own', 'boolean', 'written by the account itself (its replies)'),
        Column('is_question', 'boolean', 'a top-level comment whose text holds `?` (also `？`, `؟`), decided when read: it outlives the blanking of the text'),
        Column('first_seen_at', 'timestamptz', 'first read'),
        Column('last_seen_at', 'timestamptz', 'last read (a full re-read deletes the comments it no longer finds)'),
        Column('text_blanked_at', 'timestamptz', 'when retention blanked text and username; NULL while kept'),
    ]),
    Table('media_comment_reads', 'one row per post whose comments were read', description='What the comment reads of each post learnt: the count read last, the last full read, a refusal', columns=[
        Column('media_id', 'text', 'the post', key=True),
        Column('ig_user_id', 'text', 'the account'),
        Column('comments_count', 'bigint', "the post's `comments_count` when its comments were last read: read again only when it moved"),
        Column('read_at', 'timestamptz', 'last read'),
        Column('full_read_at', 'timestamptz', 'last read of every page (deleted comments are removed then)'),
        Column('refused_reason', 'text', 'why the post refuses its comments (deleted post, restricted); NULL = readable'),
    ]),
    Table('comment_access', 'one row per account whose comment permission is known', description="Whether each account's token may read comments (an account without the permission is told, not failed)", columns=[
        Column('ig_user_id', 'text', 'the account', key=True),
        Column('status', 'text', '`granted` or `denied` (the token lacks `instagram_manage_comments` / `instagram_business_manage_comments`)'),
        Column('reason', 'text', "the API's refusal (redacted) and what to do"),
        Column('checked_at', 'timestamptz', 'last time a comment read told'),
        Column('changed_at', 'timestamptz', 'when the status last changed'),
    ]),
    Table('conversation_daily', 'one row per account and UTC day', description='Per account and UTC day: comments, replies, answered and open comments, first-response times of the account', columns=[
        Column('ig_user_id', 'text', 'the account', key=True),
        Column('date', 'date', 'the UTC day the comments were written', key=True),
        Column('comments', 'bigint', "top-level comments of others written that day"),
        Column('replies', 'bigint', 'replies written that day (by anyone, the account included)'),
        Column('top_level', 'bigint', "top-level comments of others that day (= comments)"),
        Column('top_level_answered', 'bigint', "of those, the ones the account has replied to (so far)"),
        Column('top_level_unanswered', 'bigint', 'of those, the ones without a reply of the account'),
        Column('unanswered_questions', 'bigint', "unanswered top-level comments containing `?`"),
        Column('answered_that_day', 'bigint', 'top-level comments whose first response by the account was written that day'),
        Column('median_first_response_minutes', 'double precision', 'median minutes from comment to the account\'s first reply, over the comments first answered that day'),
        Column('p90_first_response_minutes', 'double precision', '90th percentile of the same (linear interpolation)'),
        Column('computed_at', 'timestamptz', 'when computed'),
    ]),
    Table('conversation_posts', 'one row per post with comments', description='Per post: comments, replies, answered and open comments, median first-response time of the account', columns=[
        Column('media_id', 'text', 'the post', key=True),
        Column('ig_user_id', 'text', 'the account'),
        Column('published_at', 'timestamptz', "the post's publication"),
        Column('comments', 'bigint', 'top-level comments of others'),
        Column('replies', 'bigint', 'replies (the account\'s included)'),
        Column('top_level_answered', 'bigint', 'top-level comments the account replied to'),
        Column('top_level_unanswered', 'bigint', 'top-level comments without a reply of the account'),
        Column('unanswered_questions', 'bigint', 'unanswered top-level comments containing `?`'),
        Column('median_first_response_minutes', 'double precision', "median minutes to the account's first reply"),
        Column('computed_at', 'timestamptz', 'when computed'),
    ]),
    Table('tagged_media', 'one row per account and post of another account that tags it', description='Public posts of other accounts that tag the account, with their counts when last read', columns=[
        Column('ig_user_id', 'text', 'the account tagged', key=True),
        Column('media_id', 'text', 'the post', key=True),
        Column('username', 'text', 'the @handle of the account that posted it'),
        Column('media_type', 'text', '`IMAGE`, `VIDEO`, `CAROUSEL_ALBUM`'),
        Column('media_product_type', 'text', '`FEED`, `REELS`'),
        Column('published_at', 'timestamptz', 'publication time'),
        Column('permalink', 'text', 'link to the post'),
        Column('caption', 'text', 'caption'),
        Column('like_count', 'bigint', 'public like count when last read (NULL when the owner hides it)'),
        Column('comments_count', 'bigint', 'public comment count when last read'),
        Column('first_seen_at', 'timestamptz', 'first read'),
        Column('last_seen_at', 'timestamptz', 'last read'),
    ]),
    Table('tag_reads', 'one row per account whose tagged posts were read', description="When each account's tagged posts were last read (about once a day)", columns=[
        Column('ig_user_id', 'text', 'the account', key=True),
        Column('read_at', 'timestamptz', 'last read of `/tags`: read again when 23 h old, and by every `ig-analytics sync`'),
        Column('posts', 'bigint', 'tagged posts that read returned'),
    ]),
    Table('media_hashtags', 'one row per post and hashtag of its caption', description="The hashtags of each post's caption, case-folded, without '#'", columns=[
        Column('media_id', 'text', 'the post', key=True),
        Column('hashtag', 'text', 'the tag: NFC, case-folded, without `#` (`#Straße` -> `strasse`)', key=True),
        Column('ig_user_id', 'text', 'the account'),
        Column('published_at', 'timestamptz', "the post's publication"),
    ]),
    Table('hashtag_performance', 'one row per account, period and hashtag used on at least 3 posts of it', description="Per account, trailing period and hashtag (3+ posts): median rate by reach and reach against the account's median", columns=[
        Column('ig_user_id', 'text', 'the account', key=True),
        Column('period_start', 'date', 'first day (UTC) of the trailing period', key=True),
        Column('period_end', 'date', 'last day (UTC): the day before it was computed (the last complete day); periods of 30 and 90 days', key=True),
        Column('hashtag', 'text', 'the tag (as in media_hashtags)', key=True),
        Column('posts', 'bigint', 'posts (no stories) of the period using the tag (at least 3)'),
        Column('median_engagement_rate_reach', 'double precision', 'median engagement rate by reach of those posts (%)'),
        Column('median_reach', 'double precision', 'median reach of those posts'),
        Column('lift_vs_account_median', 'double precision', "median_engagement_rate_reach / the account's median over all its posts of the period (1.0 = as usual); NULL when that is 0 or unknown"),
        Column('account_median_engagement_rate_reach', 'double precision', "the account's median over all its posts of the period (%)"),
        Column('computed_at', 'timestamptz', 'when computed'),
    ]),
    Table('sync_runs', 'one row per Dagster run, account and sync type', [
        Column('dagster_run_id', 'text', 'the Dagster run', key=True),
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('sync_type', 'text', '`account`, `media` or `demographics`; a step retry updates its row', key=True),
        Column('partition_key', 'text', 'a partition key, or `first...last` for a range run'),
        Column('started_at', 'timestamptz', "when the account's sync started"),
        Column('finished_at', 'timestamptz', 'when it ended (NULL while running)'),
        Column('status', 'text', '`running`, `success`, `partial` (data written, some due items not captured), `failed`. A `sync` whose process died leaves `running`: the next `ig-analytics sync` closes those rows (`failed`, error `abandoned: ...`)'),
        Column('api_calls', 'bigint', 'HTTP requests (a batch of up to 50 calls counts once)'),
        Column('rows_written', 'bigint', 'rows written for the account'),
        Column('throttle_wait_seconds', 'double precision', 'time spent pausing for rate limits'),
        Column('items_skipped', 'bigint', 'posts skipped (no insights available, etc.)'),
        Column('error', 'text', 'the failure, redacted, with what to do'),
        Column('error_code', 'integer', 'the Graph API error code'),
        Column('error_subcode', 'integer', 'the Graph API error subcode'),
        Column('fbtrace_id', 'text', "Meta's trace id of the failed call (for a bug report)"),
        Column('details', 'jsonb', 'skipped items, dropped metrics, per-type counts'),
    ]),
    Table('notifications', 'one row per event', [
        Column('dedupe_key', 'text', 'the event (e.g. `needs_reauth:<id>:<time>`, `run_failed:<run_id>`, `token_expiring:<id>:<expiry>`, `token_expired:<id>:<expiry>`): a second send is refused', key=True),
        Column('kind', 'text', "the event's kind (`needs_reauth`, `run_failed`, `token_expiring`, ...)"),
        Column('ig_user_id', 'text', 'the account concerned (NULL for run events)'),
        Column('created_at', 'timestamptz', 'when the event was recorded'),
        Column('payload', 'jsonb', "what was said (the webhook's JSON body)"),
        Column('delivery', 'text', '`pending`, `sent`, `failed`, `recorded` (no webhook configured)'),
        Column('attempts', 'integer', 'delivery attempts so far'),
        Column('last_error', 'text', 'why the last delivery failed'),
        Column('delivered_at', 'timestamptz', 'when the webhook accepted it'),
    ]),
]}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_columns(table: str) -> str:
    rows = ["| column | type | meaning |", "|---|---|---|"]
    for c in TABLES[table].columns:
        rows.append(f"| {c.name} | {c.type}{' PK' if c.key else ''} | {_cell(c.description)} |")
    return "\n".join(rows)


_BLOCK = re.compile(r"<!-- columns: (\w+) -->\n.*?<!-- /columns -->", re.S)


def render_dictionary(text: str) -> str:
    """The data dictionary with every ``<!-- columns: table -->`` block regenerated from TABLES."""
    return _BLOCK.sub(lambda m: f"<!-- columns: {m.group(1)} -->\n{markdown_columns(m.group(1))}\n<!-- /columns -->",
                      text)


def main(argv: list[str]) -> int:
    current = DATA_DICTIONARY.read_text()
    rendered = render_dictionary(current)
    if "--write" in argv:
        DATA_DICTIONARY.write_text(rendered)
        return 0
    if rendered != current:
        print(f"{DATA_DICTIONARY} is out of date: run python -m ig_analytics.storage.tables --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
