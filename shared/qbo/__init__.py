"""QBO: the Accounting API client, its typed errors, and Intuit OAuth."""
