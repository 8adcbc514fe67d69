"""Print the SecretString of one Secrets Manager secret: read_secret.py SECRET_ID REGION.

Run on the target by the app role with the system Python and python3-boto3, so an
instance needs no Ansible collection to configure itself. boto3 honours
AWS_ENDPOINT_URL, which is how the CI run points it at moto.
"""

import sys

import boto3


def main():
    """Fetch the secret named on the command line and print its string."""
    secret_id, region = sys.argv[1], sys.argv[2]
    client = boto3.client("secretsmanager", region_name=region)
    print(client.get_secret_value(SecretId=secret_id)["SecretString"])


if __name__ == "__main__":
    main()
