"""One package per Lambda function; each handler is glue around ``shared``."""
