"""moto_server with one bug of moto 5.2.5 fixed; the AWS tests run this instead.

moto's CreateLaunchTemplate wraps the template's UserData in its
Base64EncodedString type, but CreateLaunchTemplateVersion stores a new
version's UserData as the plain string it received. An auto-scaling group
launching instances from any version after the first then dies on
``assert isinstance(user_data, Base64EncodedString)`` in
moto/ec2/models/launch_templates.py (a 500, which Ansible reports as "invalid
XML"). AWS launches such versions like any other, and deploy.yml publishes one
per release, so the group could never start an instance under moto.

The fix wraps the new version's UserData the way CreateLaunchTemplate does
(moto's own parse_user_data, which also rejects invalid base64 as AWS does).
Nothing else is changed: what moto does not implement stays unimplemented.

    python tests/infra/moto_server.py -H 127.0.0.1 -p PORT
"""

from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data
from moto.server import main

_create_version = LaunchTemplate.create_version


def create_version(self, data, description):
    """Store a new version's UserData as moto's CreateLaunchTemplate does."""
    if isinstance(data.get("UserData"), str):
        data = {**data, "UserData": parse_user_data(data["UserData"])}
    return _create_version(self, data, description)


if __name__ == "__main__":
    LaunchTemplate.create_version = create_version
    main()
