"""The command line (``ig-analytics``): click commands, their one-line errors, and the commands that start runs
(sync, demo) or read state (status). Imports everything below it; nothing imports it."""
