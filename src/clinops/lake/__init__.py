"""The bronze/silver/gold lake over a local directory or S3/MinIO."""
