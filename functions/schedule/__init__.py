"""The schedule function: the daily token keep-alive."""
