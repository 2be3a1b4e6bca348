"""The tables of schema ``instagram``, column by column: the one source of truth for the data dictionary's column
tables (docs/data-dictionary.md, regenerated with ``python -m ig_analytics.storage.tables --write``) and for the
``dagster/column_schema`` metadata of the assets (built from it in ``defs/catalog.py``; names, types and
descriptions shown in the Dagster UI).
``ig_analytics_tests/test_table_metadata.py`` checks both against the migrated database."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ig_analytics.storage.columns import Column, Table
from ig_analytics.storage.tables_social import SOCIAL_TABLES

DATA_DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


TABLES: dict[str, Table] = {t.name: t for t in [
    Table('accounts', 'one row per connected account', description='The connected Instagram professional accounts: who they are, their status and their token (never in plain text)', columns=[
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
    Table('account_profile_snapshots', 'one row per account and profile read', description="Each read of an account's profile: follower, following and post totals as of that moment", columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('captured_at', 'timestamptz', 'time of the profile read', key=True),
        Column('followers_total', 'bigint', "the profile's follower total then"),
        Column('follows_total', 'bigint', 'accounts the profile followed then'),
        Column('media_count', 'bigint', "the profile's number of posts then"),
    ]),
    Table('account_insights_daily', 'one row per account and day', description="An account's daily insights from the Graph API (reach, views, interactions, follows) and its end-of-day follower total", columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', "the day the values cover: a daily value with `end_time` E is stored under E − 1 day (Meta's days are Pacific dates: they end at 07:00 UTC in summer, 08:00 UTC in winter)", key=True),
        Column('reach', 'bigint', 'unique accounts reached that day. **Never sum across days** (unique counts); reports use a `total_value` or say "daily sum"'),
        Column('views', 'bigint', 'times content was displayed (v22+; summable)'),
        Column('impressions', 'bigint', 'retired in v22: NULL on newer API versions'),
        Column('follower_count', 'bigint', "**new** followers that day (Meta's name); only the last 30 days and accounts with ≥ 100 followers"),
        Column('followers_total', 'bigint', "follower total at the **end of that day** (Pacific midnight starting date + 1), from the first sync on: read by the `follower_anchors` schedule within 15 minutes after the day ended, or rebuilt from the nearest such reading (else the current total) and the days' follows and unfollows between (docs/analytics.md, section 0); NULL where the API's 30 days of follows do not reach"),
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
        Column('followers_total_source', 'text', "`observed` (the profile read within 15 minutes after the day's end) or `derived` (rebuilt from the nearest observed day, else the newest reading); a derived value never overwrites an observed one"),
        Column('measured_follows', 'bigint', "follows that day: `FOLLOWER` of `follows_and_unfollows` asked with `breakdown=follow_type` (one day per call); NULL where not served (under 100 followers, versions without it, not reported yet)"),
        Column('measured_unfollows', 'bigint', "unfollows that day: `NON_FOLLOWER` of the same call"),
        Column('unfollows_source', 'text', '`measured` (`measured_unfollows`), `inferred` (`follows_and_unfollows − follower_count`) or `assumed_zero` (API versions without `follows_and_unfollows`); NULL while `unfollows` is unknown'),
    ]),
    Table('media', 'one row per post or story', description='Posts, reels and stories of the accounts: what they are and when they were published', columns=[
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
        Column('rejected_metrics_at', 'timestamptz', 'when `rejected_metrics` was last learnt: a day later every metric is asked again (Meta may serve a refused metric again)'),
        Column('insights_refused_code', 'integer', "the API's error code when it refused this post's insights while the account's other calls worked (e.g. 10, a permission refused for this post only); NULL once a capture succeeds"),
        Column('insights_refused_reason', 'text', "the API's message of that refusal (redacted)"),
        Column('insights_refused_at', 'timestamptz', 'when it was refused: the post is asked again a day later, not every hour'),
        Column('first_seen_at', 'timestamptz', 'when a sync first listed the post'),
        Column('updated_at', 'timestamptz', 'when a listed value last changed'),
    ]),
    Table('media_insights_snapshots', 'one row per post and capture slot', description='Lifetime metrics of each post as read at each hourly capture: the growth history of a post', columns=[
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
    Table('media_curves', 'one row per post of trending\'s baseline whose early snapshots retention compacted', description="The snapshots of a post's first days (its first `curve_span`, 8.25 days) that retention deleted while the post is in trending's 90-day baseline, packed as arrays: trending reads them with the snapshots (each point is in one place); deleted when the post leaves the baseline. Element i of every array is one deleted snapshot, ascending by capture slot; read them as rows in `media_curve_points`", columns=[
        Column('media_id', 'text', 'the post (`instagram.media.media_id`)', key=True),
        Column('published_at', 'timestamptz', "the post's publication when packed: the base of the offsets"),
        Column('captured_after_ms', 'int4[]', 'capture slot of each deleted snapshot, in milliseconds after published_at'),
        Column('fetched_after_ms', 'int4[]', 'when each was read, in milliseconds after published_at (floored: trending\'s whole-second ages and cutoffs stay exact)'),
        Column('reach', 'int8[]', "each one's reach (NULL elements: not reported)"),
        Column('likes', 'int8[]', "each one's lifetime likes"),
        Column('comments', 'int8[]', "each one's lifetime comments"),
        Column('saved', 'int8[]', "each one's lifetime saves"),
        Column('shares', 'int8[]', "each one's lifetime shares"),
        Column('total_interactions', 'int8[]', "each one's total interactions; the engagement is computed from these counters when read, as for a snapshot"),
    ]),
    Table('media_engagement', 'one row per post (from its newest snapshot)', description="Each post's engagement and rates (by reach, views and followers) and performance score, from its newest snapshot", columns=[
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
    Table('account_engagement_daily', 'one row per account and day of publication (account timezone)', description="Engagement of the posts an account published each day, in the account's time zone", columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', "day of publication in the account's timezone", key=True),
        Column('posts', 'bigint', 'posts (FEED and REELS; stories excluded) published that day'),
        Column('engagement', 'bigint', "summed engagement of the day's posts whose engagement and reach are both known (reach > 0)"),
        Column('reach', 'bigint', 'summed reach of the same posts (post reach, not unique accounts)'),
        Column('engagement_rate_reach', 'double precision', 'sum(engagement) / sum(reach) × 100 over the same posts: equals engagement / reach × 100 of the row'),
        Column('computed_at', 'timestamptz', "when the row's values last changed (recomputed every run; a row whose values are unchanged is not rewritten)"),
    ]),
    Table('trending_posts', 'one row per account, evaluation and rank', description="The posts trending at each hourly evaluation, ranked against the account's own baseline", columns=[
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
    Table('best_posting_times', 'one row per account, ISO weekday and hour (account timezone)', description="Average engagement rate by reach per weekday and hour of publication, in the account's time zone", columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('weekday', 'smallint', "ISO weekday of publication in the account's timezone: 1 = Monday … 7 = Sunday", key=True),
        Column('hour', 'smallint', "hour of publication (0-23) in the account's timezone", key=True),
        Column('posts', 'bigint', 'posts in the slot (lookback window, docs/analytics.md)'),
        Column('avg_engagement_rate_reach', 'double precision', "mean of the posts' engagement_rate_reach"),
        Column('shrunk_engagement_rate_reach', 'double precision', "shrunk toward the account's mean for thin slots"),
        Column('computed_at', 'timestamptz', "when the row's values last changed (recomputed every run; a row whose values are unchanged is not rewritten)"),
        Column('reliable', 'boolean', 'slot has at least the minimum number of posts'),
        Column('account_avg_engagement_rate_reach', 'double precision', "the account's mean (the shrinkage target)"),
    ]),
    Table('performance_reports', 'one row per account, kind and period', description='Daily, weekly and on-demand performance reports (JSON)', columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('period_start', 'date', 'first day of the period (account timezone)', key=True),
        Column('period_end', 'date', 'last day of the period', key=True),
        Column('kind', 'text', '`rolling_7d` (daily asset), `weekly` (Mon-Sun), `on_demand` (`ig-analytics report`)', key=True),
        Column('generated_at', 'timestamptz', 'when the report was written'),
        Column('report', 'jsonb', "the story's PerformanceReport in snake_case: period, account_metrics (follower_growth with new_followers and unfollows), content_metrics (total_posts without stories, total_stories, stories), engagement, trends (with method, engagement_rate, reach), best_posting_times, audience (newest demographics snapshot of the period), followers_online; every field: docs/analytics.md, section 5"),
        Column('html_path', 'text', 'the self-contained HTML file under `IG_ANALYTICS_HOME/reports/`'),
    ]),
    Table('audience_demographics', 'one row per account, day, metric, breakdown and key', description='Follower and engaged-audience demographics by age, gender, country and city, one daily picture; only the newest day (retention\'s `audience_pack_after_days`, 1): older ones are packed (`audience_pictures_packed`), and the view `audience_pictures` shows them all', columns=[
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
    Table('audience_age_gender', 'one row per account, day, metric, age range and gender (the crossed picture, one `breakdown=age,gender` call; the view `audience_pictures` shows it with the other breakdowns as breakdown `age,gender`, key `<age>|<gender>`)', description='Follower and engaged-audience demographics by age crossed with gender, one daily picture; only the newest day, as in `audience_demographics`', columns=[
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
    Table('audience_pictures_packed', 'one row per account and day (a whole picture, older than retention\'s `audience_pack_after_days`)', description='The older audience pictures packed: the rows of `audience_demographics` and `audience_age_gender` of one account and day as parallel arrays (element i of every array is one row, in `audience_pictures` shape), compressed; read them through the view `audience_pictures`', columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('date', 'date', 'as in audience_demographics', key=True),
        Column('metric', 'text[]', "each row's metric, ordered by metric, breakdown and key"),
        Column('breakdown', 'text[]', "each row's breakdown (`age,gender` for the crossed cells)"),
        Column('key', 'text[]', "each row's key (`<age>|<gender>` for the crossed cells)"),
        Column('value', 'int8[]', "each row's value (bigint)"),
        Column('timeframe', 'text[]', "each row's timeframe (NULL elements where none was asked)"),
        Column('api_version', 'text[]', "each row's API version"),
        Column('fetched_at', 'timestamptz[]', "each row's fetch time"),
    ]),
    Table('audience_demographics_status', 'one row per account, day, metric and breakdown', description='Why a demographics picture is missing or empty for an account and day', columns=[
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
    Table('online_followers', 'one row per account and hour', description='How many followers were online at each hour (API versions up to v24)', columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('hour_start', 'timestamptz', "the hour's start: the API's hour key h of the day that ends at `end_time` is `end_time` - 24 h + h hours", key=True),
        Column('followers_online', 'bigint', "followers online during that hour (Meta's `online_followers`: API versions up to v24 only, accounts with 100+ followers, the last 30 days)"),
        Column('api_version', 'text', 'Graph API version that produced the row'),
        Column('fetched_at', 'timestamptz', 'when it was read (a later read of the same hour replaces the value)'),
    ]),
    Table('sync_runs', 'one row per Dagster run, account and sync type', description='One row per account and sync run: what was asked, what it cost and how it ended', columns=[
        Column('dagster_run_id', 'text', 'the Dagster run', key=True),
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('sync_type', 'text', '`account`, `media`, `demographics` or `followers` (the day-end follower reads); a step retry updates its row', key=True),
        Column('partition_key', 'text', 'a partition key, or `first...last` for a range run (and for the successful hourly media syncs of consecutive hours of a day that retention merges into one row after 7 days)'),
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
        Column('details', 'jsonb', 'skipped items, dropped metrics, per-type counts (a merged row: the counts summed and `merged_syncs`)'),
    ]),
    Table('notifications', 'one row per event', description='Alerts and report notices, and whether the webhook accepted them', columns=[
        Column('dedupe_key', 'text', 'the event (e.g. `needs_reauth:<id>:<time>`, `run_failed:<run_id>`, `token_expiring:<id>:<expiry>`, `token_expired:<id>:<expiry>`): a second send is refused', key=True),
        Column('kind', 'text', "the event's kind (`needs_reauth`, `run_failed`, `token_expiring`, ...)"),
        Column('ig_user_id', 'text', 'the account concerned (NULL for run events)'),
        Column('created_at', 'timestamptz', 'when the event was recorded'),
        Column('payload', 'jsonb', "what was said (the webhook's JSON body)"),
        Column('delivery', 'text', '`pending` (being posted in the background), `sent`, `failed` (also: still '
               'unfinished when the process ended), `recorded` (no webhook configured)'),
        Column('attempts', 'integer', 'delivery attempts so far'),
        Column('last_error', 'text', 'why the last delivery failed'),
        Column('delivered_at', 'timestamptz', 'when the webhook accepted it'),
    ]),
]}
TABLES.update({t.name: t for t in SOCIAL_TABLES})  # competitors, comments, tags, hashtags


def _like(table: str, **described: str) -> list[Column]:
    """A view's columns: those of ``table`` (no key), with the descriptions given here where they differ."""
    return [Column(c.name, c.type, described.get(c.name, c.description)) for c in TABLES[table].columns]


# Bookkeeping tables and the views over the tables above.
TABLES.update({t.name: t for t in [
    Table('trending_evaluations', 'one row per account and hourly evaluation', description='What each trending evaluation looked at: candidates, how many could be scored and how many were listed, with the set of parameters used (`trending_evaluations_with_params` shows them)', columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)', key=True),
        Column('as_of', 'timestamptz', 'the evaluated hour (as `trending_posts.as_of`)', key=True),
        Column('candidates', 'integer', 'posts younger than the maximum age, with snapshots'),
        Column('scored', 'integer', 'candidates with enough baseline evidence to be scored'),
        Column('listed', 'integer', 'rows written to `trending_posts`'),
        Column('computed_at', 'timestamptz', 'when the evaluation ran'),
        Column('params_id', 'integer', 'the trending parameters of this evaluation (`trending_parameter_sets.params_id`; until issue 27 a `params` JSON on every row)'),
    ]),
    Table('trending_parameter_sets', 'one row per distinct set of trending parameters', description='The parameters trending evaluations ran with, stored once per distinct set (docs/analytics.md, "Trending")', columns=[
        Column('params_id', 'integer', 'the set (`trending_evaluations.params_id`)', key=True),
        Column('params', 'jsonb', 'the parameters (`TrendingParams`: method, ages, windows, thresholds)'),
        Column('first_used_at', 'timestamptz', 'when an evaluation first ran with them'),
    ]),
    Table('api_budget', 'one row per budget scope', description="The Meta app's call budget as last reported (X-App-Usage), shared by every run of the deployment for pacing", columns=[
        Column('scope', 'text', '`app`: the X-App-Usage figure of the whole Meta app', key=True),
        Column('usage_pct', 'real', 'highest of the reported percentages (call count, time, CPU time)'),
        Column('observed_at', 'timestamptz', 'when the response carrying it arrived (newest wins)'),
        Column('observed_by', 'text', 'host:pid of the client that saw it'),
    ]),
    Table('schema_migrations', 'one row per applied migration', description='The schema migrations applied to this database (ig_analytics/storage/migrations)', columns=[
        Column('version', 'integer', 'the number of the migration file', key=True),
        Column('name', 'text', 'the migration file'),
        Column('applied_at', 'timestamptz', 'when it was applied'),
    ]),
    Table('posts', 'one row per post or story', kind='view', description='Everything about a post in one row, for analysts: the account, when (UTC and local), what, its newest metrics, every rate, whether it trended', columns=[
        Column('media_id', 'text', 'the post (`instagram.media.media_id`)'),
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)'),
        Column('username', 'text', "the account's @handle"),
        Column('timezone', 'text', "the account's time zone (IANA name)"),
        Column('media_type', 'text', '`IMAGE`, `VIDEO` or `CAROUSEL_ALBUM`'),
        Column('media_product_type', 'text', '`FEED`, `REELS`, `STORY` or `AD`'),
        Column('published_at', 'timestamptz', 'when it was published (UTC)'),
        Column('published_local', 'timestamp without time zone', "when it was published, on the account's clock"),
        Column('caption', 'text', 'the caption as Meta serves it (NUL characters removed)'),
        Column('permalink', 'text', 'link to the post on Instagram'),
        Column('metrics_captured_at', 'timestamptz', 'the capture the metrics below come from (the newest snapshot); NULL = none yet'),
        Column('reach', 'bigint', 'lifetime unique accounts reached, as of that capture'),
        Column('views', 'bigint', 'lifetime views, as of that capture'),
        Column('likes', 'bigint', 'lifetime likes, as of that capture'),
        Column('comments', 'bigint', 'lifetime comments, as of that capture'),
        Column('saved', 'bigint', 'lifetime saves, as of that capture'),
        Column('shares', 'bigint', 'lifetime shares, as of that capture'),
        Column('total_interactions', 'bigint', "Meta's total interactions, as of that capture"),
        Column('follows', 'bigint', 'follows the post brought, as of that capture'),
        Column('profile_visits', 'bigint', 'profile visits the post brought, as of that capture'),
        Column('engagement', 'bigint', '`media_engagement.engagement`: total interactions, else the sum of the parts'),
        Column('engagement_rate_reach', 'double precision', 'engagement / reach x 100'),
        Column('engagement_rate_views', 'double precision', 'engagement / views x 100'),
        Column('engagement_rate_followers', 'double precision', 'engagement / followers at publication x 100'),
        Column('like_rate', 'double precision', 'likes / reach x 100'),
        Column('comment_rate', 'double precision', 'comments / reach x 100'),
        Column('save_rate', 'double precision', 'saves / reach x 100'),
        Column('share_rate', 'double precision', 'shares / reach x 100'),
        Column('performance_score', 'double precision', "the story's post score (docs/analytics.md)"),
        Column('followers_at_publish', 'bigint', 'follower total at the end of the day before publication'),
        Column('hashtags', 'text[]', 'the hashtags of the caption, case-folded, without `#` (`instagram.media_hashtags`)'),
        Column('trended', 'boolean', 'whether the post was ever listed in `trending_posts`'),
        Column('first_trended_at', 'timestamptz', 'the first hourly evaluation that listed it'),
        Column('best_trending_rank', 'integer', 'its best rank there (1 = most trending)'),
        Column('snapshots', 'bigint', 'how many hourly captures of its metrics are kept'),
        Column('comments_answered', 'bigint', 'top-level comments of others the account replied to (`conversation_posts`)'),
        Column('comments_unanswered', 'bigint', 'top-level comments of others still without a reply of the account'),
        Column('unanswered_questions', 'bigint', 'of those, the ones holding a question mark'),
        Column('median_first_response_minutes', 'double precision', "median minutes from a comment to the account's first reply"),
    ]),
    Table('account_days', 'one row per account and day with insights', kind='view', description="An account's day in one row: Meta's daily insights (Pacific-time day) beside the posts, stories and engagement of the posts published that day (account's time zone)", columns=[
        Column('ig_user_id', 'text', 'the account (`instagram.accounts.ig_user_id`)'),
        Column('username', 'text', "the account's @handle"),
        Column('date', 'date', "the day (insights: Meta's Pacific-time day; posts: the account's local day)"),
        Column('reach', 'bigint', 'unique accounts reached that day (never add days up)'),
        Column('views', 'bigint', 'views that day'),
        Column('accounts_engaged', 'bigint', 'unique accounts that interacted that day'),
        Column('total_interactions', 'bigint', 'interactions that day'),
        Column('profile_views', 'bigint', 'profile views that day (retired by Meta in v21: NULL since)'),
        Column('follows', 'bigint', 'new follows that day (measured split, else `follower_count`)'),
        Column('unfollows', 'bigint', 'unfollows that day (see `unfollows_source`)'),
        Column('unfollows_source', 'text', '`measured`, `inferred` or `assumed_zero`'),
        Column('followers_total', 'bigint', 'follower total at the end of the day'),
        Column('followers_total_source', 'text', '`observed` (read at the day end) or `derived`'),
        Column('posts', 'bigint', 'posts and reels published that day (account time zone)'),
        Column('stories', 'bigint', 'stories published that day (account time zone)'),
        Column('engagement', 'bigint', 'engagement of the posts published that day (`account_engagement_daily`)'),
        Column('engagement_rate_reach', 'double precision', 'their engagement / reach x 100'),
    ]),
    Table('media_curve_points', 'one row per packed point (a snapshot retention moved to `media_curves`)', kind='view', description="The points of `media_curves` as rows with the snapshots' column names: what trending reads besides the snapshots", columns=[
        Column('media_id', 'text', 'the post'),
        Column('captured_at', 'timestamptz', 'the capture slot of the deleted snapshot'),
        Column('fetched_at', 'timestamptz', 'when it was read (to the millisecond)'),
        Column('reach', 'bigint', 'its reach'),
        Column('likes', 'bigint', 'its lifetime likes'),
        Column('comments', 'bigint', 'its lifetime comments'),
        Column('saved', 'bigint', 'its lifetime saves'),
        Column('shares', 'bigint', 'its lifetime shares'),
        Column('total_interactions', 'bigint', 'its total interactions'),
    ]),
    Table('media_insights_latest', 'one row per post', kind='view', description="The newest snapshot of each post's lifetime metrics", columns=_like('media_insights_snapshots')),
    Table('audience_pictures', 'one row per account, day, metric, breakdown and key', kind='view', description='Every kept demographics picture in one shape: age, gender, country and city from `audience_demographics`, the crossed age x gender cells as breakdown `age,gender` with key `<age>|<gender>`, and the older pictures unpacked from `audience_pictures_packed`; the history analysts read (the tables hold only the newest day)', columns=_like(
        'audience_demographics', breakdown='`age`, `gender`, `country`, `city`, or `age,gender` (the crossed cells of `audience_age_gender`)',
        key="the breakdown's value, e.g. `25-34`, `F`, `US`, `Paris, Ile-de-France`; `<age>|<gender>` for `age,gender`")),
]})
TABLES.update({t.name: t for t in [
    Table('trending_evaluations_with_params', 'one row per account and hourly evaluation', kind='view', description='`trending_evaluations` with the parameters of each evaluation, as the table held them until issue 27', columns=[
        *[c for c in _like('trending_evaluations') if c.name not in ('params_id', 'computed_at')],
        Column('params', 'jsonb', 'the trending parameters of this evaluation (`trending_parameter_sets.params`)'),
        *[c for c in _like('trending_evaluations') if c.name in ('computed_at', 'params_id')]]),
]})


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
