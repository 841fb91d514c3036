"""Partner delivery: the Delta Sharing protocol server, tokens, audit, file and database delivery."""
