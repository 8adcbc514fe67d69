#!/usr/bin/python
"""Create or update a CloudWatch dashboard; changed only when its body differs.

amazon.aws and community.aws have no dashboard module, and PutDashboard
replaces the whole body, so this compares the stored body first to keep a
second provision at changed=0.
"""

DOCUMENTATION = r"""
module: greenbar_dashboard
short_description: Create, update or delete a CloudWatch dashboard.
description: Compares the dashboard's stored body with the given one and writes it only when they differ.
options:
  name:
    description: The dashboard's name.
    type: str
    required: true
  body:
    description: The dashboard body, as a JSON string.
    type: str
  state:
    description: Whether the dashboard should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

import json

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


def stored_body(client, name):
    """The dashboard's body as a Python value, or None when there is no such dashboard."""
    try:
        return json.loads(client.get_dashboard(DashboardName=name)["DashboardBody"])
    except is_boto3_error_code("ResourceNotFound"):
        return None


def main():
    """Bring the dashboard to the wanted state."""
    module = AnsibleAWSModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "body": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["body"])],
        supports_check_mode=True,
    )
    client = module.client("cloudwatch")
    name = module.params["name"]
    current = stored_body(client, name)
    if module.params["state"] == "absent":
        if current is not None and not module.check_mode:
            client.delete_dashboards(DashboardNames=[name])
        module.exit_json(changed=current is not None)
    wanted = json.loads(module.params["body"])
    changed = current != wanted
    if changed and not module.check_mode:
        client.put_dashboard(DashboardName=name, DashboardBody=json.dumps(wanted))
    module.exit_json(changed=changed, dashboard_name=name)


if __name__ == "__main__":
    main()
