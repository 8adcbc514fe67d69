"""Delete a launch template and every version of it: delete_launch_template.py NAME REGION [ENDPOINT].

DeleteLaunchTemplate alone removes all versions. amazon.aws.ec2_launch_template
(state: absent) first deletes the non-default versions with
DeleteLaunchTemplateVersions, a call AWS does not need here and moto does not
implement, so a template deploy.yml has given several versions could not be
torn down under moto. Prints "deleted", or "absent" when there is no such template.
"""

import sys

import boto3
from botocore.exceptions import ClientError


def main():
    """Delete the template named on the command line, tolerating its absence."""
    name, region = sys.argv[1], sys.argv[2]
    endpoint = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    try:
        ec2.delete_launch_template(LaunchTemplateName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "InvalidLaunchTemplateName.NotFoundException":
            raise
        print("absent")
        return
    print("deleted")


if __name__ == "__main__":
    main()
