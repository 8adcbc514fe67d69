"""Download one release archive from S3: fetch_release.py BUCKET KEY DEST REGION.

Run on the target by the app role with the system Python and python3-boto3.
"""

import os
import sys

import boto3


def main():
    """Download s3://BUCKET/KEY to DEST atomically (a partial file never remains)."""
    bucket, key, dest, region = sys.argv[1:5]
    partial = dest + ".part"
    boto3.client("s3", region_name=region).download_file(bucket, key, partial)
    os.replace(partial, dest)


if __name__ == "__main__":
    main()
