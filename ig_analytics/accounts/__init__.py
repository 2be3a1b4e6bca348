"""Accounts and their tokens: the accounts table (``repository``), encrypted tokens at rest (``token_vault``),
token inspection and refresh (``token_lifecycle``), discovery through Facebook Pages, and stable shards."""
