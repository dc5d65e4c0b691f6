"""The S3 façade: path-style S3 with SigV4 over the same Store."""
