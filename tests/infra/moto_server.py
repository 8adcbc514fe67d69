"""moto_server with one bug of moto 5.2.5 fixed and its instance refresh filled in.

The AWS tests run this instead of moto_server.

**The fix.** moto's CreateLaunchTemplate wraps the template's UserData in its
Base64EncodedString type, but CreateLaunchTemplateVersion stores a new
version's UserData as the plain string it received. An auto-scaling group
launching instances from any version after the first then dies on
``assert isinstance(user_data, Base64EncodedString)`` in
moto/ec2/models/launch_templates.py (a 500, which Ansible reports as "invalid
XML"). AWS launches such versions like any other, and deploy.yml publishes one
per release, so the group could never start an instance under moto. The fix
wraps the new version's UserData the way CreateLaunchTemplate does (moto's own
parse_user_data, which also rejects invalid base64 as AWS does).

**The instance refresh.** moto 5.2.5 answers StartInstanceRefresh and
DescribeInstanceRefreshes with "not yet implemented"; deploy.yml's refresh
(amazon.aws.autoscaling_instance_refresh and _info) calls both. This adds them
to moto's auto-scaling backend, answering in the shapes of botocore's service
model (moto serialises them from it). What it models:

- StartInstanceRefresh records the request's Strategy and Preferences
  (MinHealthyPercentage, MaxHealthyPercentage, InstanceWarmup, SkipMatching,
  any other preference verbatim) and replaces, at once, the instances of the
  group whose launch template version (the ``aws:ec2launchtemplate:version``
  tag moto gives an instance at launch) differs from the group's version,
  ``$Latest``/``$Default`` resolved; without SkipMatching every instance. The
  replacements are launched first, with moto's own method for launching a
  group's instances, then the old ones are detached, terminated and taken out
  of the target groups with moto's own methods; the group's desired capacity
  does not change.
- The refresh is then Successful, PercentageComplete 100, InstancesToUpdate 0;
  DescribeInstanceRefreshes lists a group's refreshes newest first, optionally
  only the given ids.
- Refused as AWS refuses them (ValidationError): an unknown group, healthy
  percentages outside AWS's ranges. Refused as not modelled here: a group
  without a launch template, a Strategy other than Rolling (AWS also has
  ReplaceRootVolume).

What it does not model: health checks (a new instance is never waited for or
found unhealthy), warm-up and checkpoint timing, bake time, alarms, rollback,
warm pools, scale-in protected or standby instances (replaced like the rest),
the Pending/InProgress states (a refresh completes within the request), and
DesiredConfiguration (refused, so that no test can believe it was applied).
CancelInstanceRefresh and RollbackInstanceRefresh stay unimplemented: with
instant completion there is never a refresh to cancel.

    python tests/infra/moto_server.py -H 127.0.0.1 -p PORT
"""

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data
from moto.moto_api._internal import mock_random
from moto.server import main

_create_version = LaunchTemplate.create_version
VERSION_TAG = "aws:ec2launchtemplate:version"
NOT_MODELLED = "is not modelled by this moto shim (tests/infra/moto_server.py)."


def create_version(self, data, description):
    """Store a new version's UserData as moto's CreateLaunchTemplate does."""
    if isinstance(data.get("UserData"), str):
        data = {**data, "UserData": parse_user_data(data["UserData"])}
    return _create_version(self, data, description)


def check_preferences(preferences):
    """Refuse healthy percentages AWS refuses (the ranges of the API reference)."""
    low = preferences.get("MinHealthyPercentage", 90)
    high = preferences.get("MaxHealthyPercentage")
    if not 0 <= low <= 100:
        raise ValidationError("MinHealthyPercentage must be between 0 and 100.")
    if high is not None and not (100 <= high <= 200 and high - low <= 100):
        raise ValidationError(
            "MaxHealthyPercentage must be between 100 and 200, at most 100 above MinHealthyPercentage."
        )


def outdated_instances(backend, group, skip_matching):
    """The group's instance states a refresh replaces, and the version it targets."""
    if group.ec2_launch_template is None:
        raise ValidationError(f"A group without a launch template ({group.name}) {NOT_MODELLED}")
    target = group.ec2_launch_template.get_version(group.launch_template_version).number
    tags = backend.ec2_backend.tags
    return [
        state
        for state in group.instance_states
        if not skip_matching or tags[state.instance.id].get(VERSION_TAG) != str(target)
    ], target


def start_instance_refresh(self, group_name, strategy, preferences, desired_configuration):
    """Replace the group's outdated instances at once; record the refresh as Successful."""
    group = self.autoscaling_groups.get(group_name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
    if strategy != "Rolling":
        raise ValidationError(f"Strategy {strategy} {NOT_MODELLED}")
    if desired_configuration:
        raise ValidationError(f"DesiredConfiguration {NOT_MODELLED}")
    check_preferences(preferences)
    started = utcnow()
    replaced, _target = outdated_instances(self, group, preferences.get("SkipMatching", False))
    if replaced:
        # launch first, then stop the old ones: capacity never drops below desired.
        group.replace_autoscaling_group_instances(len(replaced), group.get_propagated_tags())
        old_ids = [state.instance.id for state in replaced]
        self.detach_instances(group.name, old_ids, should_decrement=False)
        self.ec2_backend.terminate_instances(old_ids)
        # what moto's TerminateInstances answer does: the target groups let them go.
        self.elbv2_backend.notify_terminate_instances(old_ids)
    refresh = {
        "InstanceRefreshId": str(mock_random.uuid4()),
        "AutoScalingGroupName": group.name,
        "Status": "Successful",
        "StartTime": started,
        "EndTime": utcnow(),
        "PercentageComplete": 100,
        "InstancesToUpdate": 0,
        "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": 100, "InstancesToUpdate": 0}},
        "Preferences": preferences,
        "Strategy": strategy,
    }
    refreshes_of(self).setdefault(group.name, []).insert(0, refresh)
    return refresh["InstanceRefreshId"]


def describe_instance_refreshes(self, group_name, refresh_ids):
    """The group's refreshes, newest first, only those in ``refresh_ids`` if any are given."""
    if group_name not in self.autoscaling_groups:
        raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
    return [
        refresh
        for refresh in refreshes_of(self).get(group_name, [])
        if not refresh_ids or refresh["InstanceRefreshId"] in refresh_ids
    ]


def refreshes_of(backend):
    """The backend's refreshes by group name (kept on the backend, so moto's reset clears them)."""
    if not hasattr(backend, "instance_refreshes"):
        backend.instance_refreshes = {}
    return backend.instance_refreshes


def start_instance_refresh_response(self):
    """StartInstanceRefresh: the new refresh's id."""
    refresh_id = self.autoscaling_backend.start_instance_refresh(
        group_name=self._get_param("AutoScalingGroupName"),
        strategy=self._get_param("Strategy") or "Rolling",
        preferences=self._get_param("Preferences") or {},
        desired_configuration=self._get_param("DesiredConfiguration"),
    )
    return ActionResult({"InstanceRefreshId": refresh_id})


def describe_instance_refreshes_response(self):
    """DescribeInstanceRefreshes: all of them in one page (a group has few)."""
    refreshes = self.autoscaling_backend.describe_instance_refreshes(
        group_name=self._get_param("AutoScalingGroupName"),
        refresh_ids=self._get_param("InstanceRefreshIds") or [],
    )
    return ActionResult({"InstanceRefreshes": refreshes})


def install():
    """Patch moto's classes in this process (moto_server runs its backends in it)."""
    LaunchTemplate.create_version = create_version
    AutoScalingBackend.start_instance_refresh = start_instance_refresh
    AutoScalingBackend.describe_instance_refreshes = describe_instance_refreshes
    AutoScalingResponse.start_instance_refresh = start_instance_refresh_response
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes_response


if __name__ == "__main__":
    install()
    main()
