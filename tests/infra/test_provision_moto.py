"""The AWS side against a local moto server: provision, re-provision, deploy, tear down.

The playbooks run as an operator runs them against AWS: the ansible-playbook
lines of docs/deploy-aws.md (its blocks marked "run by the moto cycle"), as
written, given only the endpoint (AWS_URL), fake credentials and what an
emulated endpoint needs on top (a moto image; for deploy.yml the commit to
ship, no approval pause, no SSH). provision.yml builds the environment; every
resource and its key settings are then read back with boto3; a second run must
change nothing. deploy.yml then ships a commit of this repository twice;
teardown.yml must remove it all. The tests share one moto server and run in
file order, as one cycle; the last checks that every documented line ran.

deploy.yml runs with deploy_skip_instance_steps=true, since moto's instances
are records, not machines: the migration instance is launched and terminated,
but nothing runs on it (no SSH, so no migrations and no /healthz check there).
Everything else runs: release archive, launch template version, group sized
from it, target health query, and on later deploys the instance refresh, which
moto 5.2.5 lacks and moto_server.py fills in (instances not on the group's
template version replaced at once; no health checks or timing). A third deploy
ships a throwaway commit of a clone of this repository, so the refresh has
instances to replace.
"""

import base64
import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest

from tests.docs_blocks import documented_playbook_runs
from tests.infra.conftest import ANSIBLE_DIR
from tests.infra.conftest import REPO
from tests.infra.conftest import free_port
from tests.infra.conftest import moto_answers
from tests.infra.conftest import require_program
from tests.infra.conftest import stop_process
from tests.infra.conftest import tail
from tests.infra.conftest import wait_until

pytestmark = pytest.mark.infra

# the environment docs/deploy-aws.md's commands build (aws_stack_env's default).
STACK = "greenbar-production"
BUCKET = f"{STACK}-123456789012"
MAIL_IDENTITY = "greenbar@example.com"
DOCUMENTED_RUNS = documented_playbook_runs()
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """Start moto_server (with moto_server.py's fix) on a free port of 127.0.0.1; stop only it afterwards."""
    require_program("moto_server")
    server = Path(__file__).with_name("moto_server.py")
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
        )
    try:
        wait_until(lambda: moto_answers(url), 30, "moto_server to answer")
        yield {"url": url, "log": log_path, "tmp": tmp_path_factory.mktemp("deploy")}
    finally:
        stop_process(process)


def aws_environment(url, tmp):
    """Environment for ansible-playbook and boto3: the moto endpoint and fake credentials only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        # deploy.yml builds its release archive here.
        TMPDIR=str(tmp),
        AWS_URL=url,
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        # no real profile or credentials file may leak into the run.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )
    return env


def run_playbook(moto, playbook, *extra_vars, expect_failure=False, unset=()):
    """Run one playbook against moto (without the variables in ``unset``); return (ok, changed, output)."""
    command = [require_program("ansible-playbook"), "-i", "inventories/production/hosts.yml", playbook]
    for assignment in extra_vars:
        command += ["-e", assignment]
    env = aws_environment(moto["url"], moto["tmp"])
    for name in unset:
        del env[name]
    result = subprocess.run(
        command,
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    failed = result.returncode != 0
    assert failed == expect_failure, (
        f"{playbook} exit {result.returncode}:\n{output[-6000:]}\n--- moto log ---\n{tail(moto['log'])}"
    )
    recap = RECAP.search(output)
    assert recap, output[-3000:]
    ok, changed, _unreachable, _failed = (int(value) for value in recap.groups())
    return ok, changed, output


def documented(cycle, playbook):
    """The extra variables docs/deploy-aws.md gives ``playbook``; the cycle notes it ran that line."""
    [assignments] = [assignments for name, assignments in DOCUMENTED_RUNS if name == playbook]
    cycle["documented_ran"].append((playbook, assignments))
    return assignments


def documented_value(playbook, variable):
    """The value docs/deploy-aws.md gives ``variable`` on the ``playbook`` line."""
    [assignments] = [assignments for name, assignments in DOCUMENTED_RUNS if name == playbook]
    return next(value.split("=", 1)[1] for value in assignments if value.startswith(f"{variable}="))


def client(moto, service):
    """A boto3 client for ``service`` on the moto server."""
    return boto3.client(
        service,
        endpoint_url=moto["url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stored_secret(moto):
    """The credentials provision.yml keeps in Secrets Manager, as a dict."""
    value = client(moto, "secretsmanager").get_secret_value(SecretId=f"{STACK}/app")["SecretString"]
    return json.loads(value)


def a_moto_image(moto):
    """An image id moto knows (it ships no Debian images, so the AMI lookup can't run)."""
    images = client(moto, "ec2").describe_images(Owners=["099720109477"])["Images"]
    return sorted(image["ImageId"] for image in images)[0]


@pytest.fixture(scope="module")
def cycle(moto):
    """Provision once; the tests below inspect, re-run and tear down what it made."""
    cycle = {"documented_ran": [], "timings": {}}
    # moto ships no Debian images, so the AMI lookup cannot run; the optional
    # parts (mail through SES, the CDN) are switched on too, so the cycle covers them
    cycle["required"] = [
        *documented(cycle, "provision.yml"),
        f"aws_stack_ami_id={a_moto_image(moto)}",
        f"aws_stack_ses_identity={MAIL_IDENTITY}",
        "aws_stack_cdn=true",
    ]
    started = time.monotonic()
    ok, changed, output = run_playbook(moto, "provision.yml", *cycle["required"])
    cycle["timings"]["provision"] = time.monotonic() - started
    cycle.update(first_changed=changed, output=output)
    return cycle


def stack_vpc(moto):
    """The stack's VPC, or None."""
    vpcs = client(moto, "ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [STACK]}])["Vpcs"]
    return vpcs[0] if vpcs else None


def subnets_by_tier(moto, vpc_id):
    """The VPC's subnets as {"public": [...], "private": [...]}, each sorted by CIDR."""
    subnets = client(moto, "ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "Subnets"
    ]
    tiers = {"public": [], "private": []}
    for subnet in sorted(subnets, key=lambda s: s["CidrBlock"]):
        tags = {tag["Key"]: tag["Value"] for tag in subnet.get("Tags", [])}
        tiers[tags["Tier"]].append(subnet)
    return tiers


def security_groups(moto, vpc_id):
    """The stack's security groups by suffix: {"lb": ..., "web": ..., "db": ...}."""
    groups = client(moto, "ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "SecurityGroups"
    ]
    return {g["GroupName"].removeprefix(STACK + "-"): g for g in groups if g["GroupName"] != "default"}


def ingress(group):
    """A group's ingress as a set of (port, source) pairs; source is a CIDR or a group id."""
    rules = set()
    for permission in group["IpPermissions"]:
        for cidr in permission.get("IpRanges", []):
            rules.add((permission["FromPort"], cidr["CidrIp"]))
        for pair in permission.get("UserIdGroupPairs", []):
            rules.add((permission["FromPort"], pair["GroupId"]))
    return rules


def test_network(moto, cycle):
    """Are there 2 public and 2 private subnets in 2 zones, routed through an internet gateway?"""
    ec2 = client(moto, "ec2")
    vpc = stack_vpc(moto)
    assert vpc["CidrBlock"] == "10.20.0.0/16"
    assert ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")[
        "EnableDnsHostnames"
    ]["Value"]
    tiers = subnets_by_tier(moto, vpc["VpcId"])
    assert len(tiers["public"]) == len(tiers["private"]) == 2
    for tier, public in (("public", True), ("private", False)):
        assert len({s["AvailabilityZone"] for s in tiers[tier]}) == 2
        assert all(s["MapPublicIpOnLaunch"] is public for s in tiers[tier])
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])[
        "InternetGateways"
    ]
    assert len(igws) == 1
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    routes_of = {}
    for table in tables:
        for association in table["Associations"]:
            if "SubnetId" in association:
                routes_of[association["SubnetId"]] = {
                    r["DestinationCidrBlock"]: r.get("GatewayId") for r in table["Routes"]
                }
    for subnet in tiers["public"]:
        assert routes_of[subnet["SubnetId"]]["0.0.0.0/0"] == igws[0]["InternetGatewayId"]
    for subnet in tiers["private"]:
        # no NAT gateway by default: the private subnets (the database's) have no way out.
        assert "0.0.0.0/0" not in routes_of[subnet["SubnetId"]]


def test_security_groups(moto, cycle):
    """Can only the balancer reach the web tier, and only the web tier reach MySQL?"""
    groups = security_groups(moto, stack_vpc(moto)["VpcId"])
    assert set(groups) == {"lb", "web", "db"}
    assert ingress(groups["lb"]) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    # no SSH: the admin CIDR is empty by default.
    assert ingress(groups["web"]) == {(80, groups["lb"]["GroupId"])}
    assert ingress(groups["db"]) == {(3306, groups["web"]["GroupId"])}


def test_database_and_secret(moto, cycle):
    """Is RDS MySQL 8 private, encrypted, backed up, protected, with credentials kept in Secrets Manager?"""
    vpc_id = stack_vpc(moto)["VpcId"]
    db = client(moto, "rds").describe_db_instances(DBInstanceIdentifier=STACK)["DBInstances"][0]
    assert db["Engine"] == "mysql" and db["EngineVersion"].startswith("8.")
    assert db["StorageEncrypted"] is True
    assert db["BackupRetentionPeriod"] == 7
    assert db["PubliclyAccessible"] is False
    assert db["DeletionProtection"] is True and db["MultiAZ"] is False
    private_ids = {s["SubnetId"] for s in subnets_by_tier(moto, vpc_id)["private"]}
    assert {s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]} == private_ids
    db_group = security_groups(moto, vpc_id)["db"]["GroupId"]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [db_group]
    secret = stored_secret(moto)
    assert set(secret) == {"username", "password", "dbname", "secret_key"}
    assert len(secret["password"]) == 32 and len(secret["secret_key"]) == 64
    assert db["MasterUsername"] == secret["username"] and db["DBName"] == secret["dbname"]
    cycle["secret"] = secret


def test_bucket(moto, cycle):
    """Is the bucket private, versioned, encrypted and HTTPS-only?"""
    s3 = client(moto, "s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_instance_permissions(moto, cycle):
    """Does the instance role grant only its secret, the bucket's prefixes, metrics and logs?"""
    iam = client(moto, "iam")
    role = iam.get_role(RoleName=f"{STACK}-web")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=f"{STACK}-web")["AttachedPolicies"] == []
    document = iam.get_role_policy(RoleName=f"{STACK}-web", PolicyName="greenbar-web")["PolicyDocument"]
    statements = {s["Sid"]: s for s in document["Statement"]}
    secret_arn = client(moto, "secretsmanager").describe_secret(SecretId=f"{STACK}/app")["ARN"]
    # the name plus AWS's six random characters: this one secret and no other.
    granted = statements["ReadAppSecret"]["Resource"]
    assert granted == f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{STACK}/app-??????"
    assert fnmatch.fnmatchcase(secret_arn, granted)
    bucket_arn = f"arn:aws:s3:::{STACK}-123456789012"
    assert statements["ReadReleases"]["Resource"] == f"{bucket_arn}/releases/*"
    assert statements["ReadWriteUploads"]["Resource"] == f"{bucket_arn}/uploads/*"
    actions = [
        a
        for s in document["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert not [a for a in actions if a.endswith("*")]
    profile = iam.get_instance_profile(InstanceProfileName=f"{STACK}-web")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [f"{STACK}-web"]


def test_attachments_and_mail_permissions(moto, cycle):
    """Is the SES identity created, and may instances reach only the attachment prefix and send only as it?"""
    assert client(moto, "ses").list_identities()["Identities"] == [MAIL_IDENTITY]
    iam = client(moto, "iam")
    document = iam.get_role_policy(RoleName=f"{STACK}-web", PolicyName="greenbar-web")["PolicyDocument"]
    statements = {s["Sid"]: s for s in document["Statement"]}
    attachments = statements["ReadWriteAttachments"]
    assert attachments["Resource"] == f"arn:aws:s3:::{BUCKET}/data/attachments/*"
    assert sorted(attachments["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert "data/attachments/*" in statements["ListOwnPrefixes"]["Condition"]["StringLike"]["s3:prefix"]
    mail = statements["SendMail"]
    assert mail["Action"] == "ses:SendEmail"
    assert mail["Resource"] == f"arn:aws:ses:us-east-1:123456789012:identity/{MAIL_IDENTITY}"
    assert mail["Condition"] == {"StringEquals": {"ses:FromAddress": MAIL_IDENTITY}}


def test_load_balancer(moto, cycle):
    """Does an internet-facing ALB in the public subnets forward HTTP to a /healthz-checked target group?"""
    elb = client(moto, "elbv2")
    vpc_id = stack_vpc(moto)["VpcId"]
    [lb] = elb.describe_load_balancers(Names=[STACK])["LoadBalancers"]
    assert lb["Scheme"] == "internet-facing"
    public_ids = {s["SubnetId"] for s in subnets_by_tier(moto, vpc_id)["public"]}
    assert {z["SubnetId"] for z in lb["AvailabilityZones"]} == public_ids
    assert lb["SecurityGroups"] == [security_groups(moto, vpc_id)["lb"]["GroupId"]]
    [tg] = elb.describe_target_groups(Names=[STACK])["TargetGroups"]
    assert (tg["HealthCheckPath"], tg["HealthCheckProtocol"], tg["Port"]) == ("/healthz", "HTTP", 80)
    assert tg["Matcher"]["HttpCode"] == "200"
    [listener] = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 80)
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    cycle["target_group_arn"] = tg["TargetGroupArn"]


def launch_template_versions(moto):
    """All versions of the stack's launch template."""
    return client(moto, "ec2").describe_launch_template_versions(LaunchTemplateName=STACK)[
        "LaunchTemplateVersions"
    ]


def test_launch_template(moto, cycle):
    """Does a new instance configure itself from S3 with IMDSv2, an encrypted disk and no secret in sight?"""
    [version] = launch_template_versions(moto)
    data = version["LaunchTemplateData"]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert user_data.startswith("#!/bin/bash")
    assert f'bucket="{STACK}-123456789012"' in user_data
    assert "configure.yml" in user_data and f'"app_secret_id": "{STACK}/app"' in user_data
    assert f'"app_storage_url": "s3://{BUCKET}/data"' in user_data
    assert '"app_mail_backend": "ses"' in user_data
    # no release deployed yet: the instance says so instead of serving nothing.
    assert 'release=""' in user_data
    secret = stored_secret(moto)
    assert secret["password"] not in user_data and secret["secret_key"] not in user_data
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert data["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{STACK}-web")
    web_group = security_groups(moto, stack_vpc(moto)["VpcId"])["web"]["GroupId"]
    assert data["NetworkInterfaces"][0]["Groups"] == [web_group]


def test_auto_scaling(moto, cycle):
    """Is the group spread over both subnets, spot-capable, on the target group, scaling at 75% CPU?"""
    autoscaling = client(moto, "autoscaling")
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[STACK])["AutoScalingGroups"]
    policy = group["MixedInstancesPolicy"]
    spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert (spec["LaunchTemplateName"], spec["Version"]) == (STACK, "$Latest")
    types = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
    assert types == ["t3.small", "t3a.small", "t2.small"]
    distribution = policy["InstancesDistribution"]
    assert distribution["OnDemandBaseCapacity"] == 1
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 0
    subnet_ids = set(group["VPCZoneIdentifier"].split(","))
    public_ids = {s["SubnetId"] for s in subnets_by_tier(moto, stack_vpc(moto)["VpcId"])["public"]}
    assert subnet_ids == public_ids
    assert group["TargetGroupARNs"] == [cycle["target_group_arn"]]
    assert group["HealthCheckType"] == "ELB"
    # empty until deploy.yml ships a release; the maximum is already in place.
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (0, 0, 6)
    [scaling] = autoscaling.describe_policies(AutoScalingGroupName=STACK)["ScalingPolicies"]
    config = scaling["TargetTrackingConfiguration"]
    assert scaling["PolicyType"] == "TargetTrackingScaling"
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ASGAverageCPUUtilization"
    assert config["TargetValue"] == 75.0


def test_alarm_notifies_topic(moto, cycle):
    """Does CPU above 50% raise an alarm that mails the operator through SNS?"""
    [alarm] = client(moto, "cloudwatch").describe_alarms(AlarmNames=[f"{STACK}-cpu-high"])["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "CPUUtilization",
        50.0,
        "GreaterThanThreshold",
    )
    assert alarm["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": STACK}]
    [topic_arn] = alarm["AlarmActions"]
    subscriptions = client(moto, "sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    email = documented_value("provision.yml", "aws_stack_alarm_email")
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", email)]
    [group] = client(moto, "logs").describe_log_groups(logGroupNamePrefix="/greenbar/production")["logGroups"]
    assert group["retentionInDays"] == 30


def test_app_alarms_watch_the_apps_own_figures(moto, cycle):
    """Do the 5xx, oldest-job and dead-letter alarms watch the right series and mail the topic?"""
    names = [f"{STACK}-5xx", f"{STACK}-oldest-job", f"{STACK}-imports-dead-letters"]
    described = client(moto, "cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
    alarms = {alarm["AlarmName"]: alarm for alarm in described}
    [topic_arn] = alarms[f"{STACK}-5xx"]["AlarmActions"]
    shapes = {
        name: (
            alarm["Namespace"],
            alarm["MetricName"],
            alarm["Dimensions"],
            alarm["Statistic"],
            alarm["Threshold"],
            alarm["AlarmActions"],
        )
        for name, alarm in alarms.items()
    }
    assert shapes == {
        f"{STACK}-5xx": (
            "Greenbar",
            "Requests",
            [{"Name": "StatusClass", "Value": "5xx"}],
            "Sum",
            25.0,
            [topic_arn],
        ),
        f"{STACK}-oldest-job": ("Greenbar", "OldestJobAgeSeconds", [], "Maximum", 900.0, [topic_arn]),
        f"{STACK}-imports-dead-letters": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": f"{STACK}-imports-dlq"}],
            "Maximum",
            0.0,
            [topic_arn],
        ),
    }
    assert alarms[f"{STACK}-oldest-job"]["TreatMissingData"] == "breaching"


def test_dashboard_shows_the_key_figures(moto, cycle):
    """Does the dashboard chart requests, cases stored, waiting work and dead letters?"""
    body = json.loads(client(moto, "cloudwatch").get_dashboard(DashboardName=STACK)["DashboardBody"])
    charted = {
        metric[1]
        for widget in body["widgets"]
        for metric in widget["properties"]["metrics"]
        if metric[0] != "..."
    }
    assert charted == {
        "Requests",
        "CasesStored",
        "OutboxDepth",
        "ImportQueueDepth",
        "OldestJobAgeSeconds",
        "CPUUtilization",
        "ApproximateNumberOfMessagesVisible",
    }


def test_import_queue_sets_failures_aside_after_five_receives(moto, cycle):
    """Does the import queue long-poll and redrive to its dead-letter queue after 5 receives?"""
    sqs = client(moto, "sqs")
    queue = sqs.get_queue_url(QueueName=f"{STACK}-imports")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=f"{STACK}-imports-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"maxReceiveCount": 5, "deadLetterTargetArn": dlq_arn}
    assert (attributes["VisibilityTimeout"], attributes["ReceiveMessageWaitTimeSeconds"]) == ("300", "20")


def test_cdn_caches_static_files_only(moto, cycle):
    """Does CloudFront cache /static/* for a year and pass everything else uncached, cookies and all?"""
    cloudfront = client(moto, "cloudfront")
    [summary] = cloudfront.list_distributions()["DistributionList"]["Items"]
    config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    [origin] = config["Origins"]["Items"]
    [alb] = client(moto, "elbv2").describe_load_balancers(Names=[STACK])["LoadBalancers"]
    assert origin["DomainName"] == alb["DNSName"]
    default = config["DefaultCacheBehavior"]
    assert (default["DefaultTTL"], default["MaxTTL"], default["ForwardedValues"]["Cookies"]["Forward"]) == (
        0,
        0,
        "all",
    )
    assert default["ForwardedValues"]["QueryString"] is True
    [static] = config["CacheBehaviors"]["Items"]
    assert (static["PathPattern"], static["DefaultTTL"], static["ForwardedValues"]["Cookies"]["Forward"]) == (
        "/static/*",
        31536000,
        "none",
    )


def test_second_run_changes_nothing(moto, cycle):
    """Does provisioning again with the same variables report changed=0 and keep the credentials?"""
    started = time.monotonic()
    _ok, changed, output = run_playbook(moto, "provision.yml", *cycle["required"])
    cycle["timings"]["provision again"] = time.monotonic() - started
    assert cycle["first_changed"] > 20
    assert changed == 0, output[-4000:]
    assert len(launch_template_versions(moto)) == 1
    secret = stored_secret(moto)
    assert secret == cycle["secret"]


def git(*args):
    """The output of a git command run in this repository, as bytes."""
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True).stdout


def user_data_of(moto, instance_id):
    """An instance's user data, decoded."""
    attribute = client(moto, "ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(attribute["UserData"]["Value"]).decode()


def tagged_instances(moto, **tags):
    """Instances in any state carrying all of ``tags``, each with its tags as a dict under "tags"."""
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
    reservations = client(moto, "ec2").describe_instances(Filters=filters)["Reservations"]
    found = [instance for reservation in reservations for instance in reservation["Instances"]]
    for instance in found:
        instance["tags"] = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
    return sorted(found, key=lambda instance: instance["LaunchTime"])


def instance_refreshes(moto):
    """The stack group's instance refreshes, newest first."""
    return client(moto, "autoscaling").describe_instance_refreshes(AutoScalingGroupName=STACK)[
        "InstanceRefreshes"
    ]


def run_deploy(moto, cycle, timing, *extra_vars):
    """Run deploy.yml as docs/deploy-aws.md shows it, plus the moto variables; return (changed, output).

    The output's whitespace is collapsed: the YAML callback folds long lines.
    """
    started = time.monotonic()
    _ok, changed, output = run_playbook(moto, "deploy.yml", *cycle["deploy_vars"], *extra_vars)
    cycle["timings"][timing] = time.monotonic() - started
    return changed, " ".join(output.split())


def test_deploy_first_release(moto, cycle, tmp_path):
    """Does deploy.yml upload a commit, launch a migration instance, start the group on a new version?"""
    sha = git("rev-parse", "HEAD").decode().strip()
    ami = next(value for value in cycle["required"] if value.startswith("aws_stack_ami_id="))
    cycle["sha"] = sha
    # the commit overrides the documented revision (a tag this repository lacks).
    cycle["deploy_vars"] = [
        *documented(cycle, "deploy.yml"),
        ami,
        f"deploy_revision={sha}",
        "deploy_skip_approval=true",
        "deploy_skip_instance_steps=true",
    ]
    s3 = client(moto, "s3")
    # moto serves plain HTTP and does not evaluate the Deny's aws:SecureTransport
    # condition (it takes it as met), so the TLS-only policy refuses every object
    # request there. On AWS every client of the bucket uses HTTPS.
    s3.delete_bucket_policy(Bucket=BUCKET)
    _changed, output = run_deploy(moto, cycle, "deploy")

    archive = tmp_path / "release.tar.gz"
    s3.download_file(BUCKET, f"releases/{sha}.tar.gz", str(archive))
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.pax_headers["comment"] == sha
        names = {member.name for member in tar.getmembers() if not member.isdir()}
        wsgi = tar.extractfile("wsgi.py").read()
    assert names == set(git("ls-tree", "-r", "--name-only", sha).decode().splitlines())
    assert wsgi == git("show", f"{sha}:wsgi.py")
    assert s3.get_object(Bucket=BUCKET, Key="releases/CURRENT")["Body"].read() == f"{sha}\n".encode()

    # a second version differing from the first only in the release it starts.
    first, new = sorted(launch_template_versions(moto), key=lambda version: version["VersionNumber"])
    assert new["VersionNumber"] == 2 and new["VersionDescription"] == f"release {sha}"
    new_data, first_data = new["LaunchTemplateData"], first["LaunchTemplateData"]
    assert f'release="{sha}"' in base64.b64decode(new_data["UserData"]).decode()
    unchanged = {key for key in new_data if key not in ("UserData", "TagSpecifications")}
    assert {key: new_data[key] for key in unchanged} == {key: first_data[key] for key in unchanged}
    [template] = client(moto, "ec2").describe_launch_templates(LaunchTemplateNames=[STACK])["LaunchTemplates"]
    assert template["DefaultVersionNumber"] == template["LatestVersionNumber"] == 2

    [group] = client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[STACK])[
        "AutoScalingGroups"
    ]
    spec = group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert spec["Version"] == "$Latest"
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (2, 2, 6)
    serving = tagged_instances(moto, **{"aws:autoscaling:groupName": STACK})
    assert sorted(i["InstanceId"] for i in serving) == sorted(i["InstanceId"] for i in group["Instances"])
    assert len(serving) == 2
    for instance in serving:
        assert instance["tags"]["aws:ec2launchtemplate:version"] == "2"
        assert (instance["tags"]["Role"], instance["tags"]["Release"]) == ("web", sha)
        assert f'release="{sha}"' in user_data_of(moto, instance["InstanceId"])
    health = client(moto, "elbv2").describe_target_health(TargetGroupArn=cycle["target_group_arn"])
    assert sorted(t["Target"]["Id"] for t in health["TargetHealthDescriptions"]) == sorted(
        i["InstanceId"] for i in serving
    )
    cycle["serving"] = sorted(i["InstanceId"] for i in serving)

    # the migration instance: the new release on the old version, outside the group, gone.
    [migrator] = tagged_instances(moto, Role="migrate")
    assert migrator["State"]["Name"] == "terminated"
    assert migrator["tags"]["Name"] == f"{STACK}-migrate-{sha[:12]}" and migrator["tags"]["Release"] == sha
    assert migrator["tags"]["aws:ec2launchtemplate:version"] == "1"
    assert f'release="{sha}"' in user_data_of(moto, migrator["InstanceId"])
    vpc_id = stack_vpc(moto)["VpcId"]
    assert migrator["SubnetId"] == subnets_by_tier(moto, vpc_id)["public"][0]["SubnetId"]
    web_group = security_groups(moto, vpc_id)["web"]["GroupId"]
    assert [group["GroupId"] for group in migrator["SecurityGroups"]] == [web_group]
    assert migrator["InstanceId"] not in cycle["serving"]

    assert f"Deployed {sha} = {sha} to {STACK}" in output
    assert f"Archive: s3://{BUCKET}/releases/{sha}.tar.gz" in output
    assert f"Launch template {STACK} version 2 (default; latest 2)" in output
    assert "Migrations: NOT RUN: deploy_skip_instance_steps (emulated endpoint)" in output
    assert "Instances: started by the group from the new version" in output


def test_deploy_same_revision_again(moto, cycle):
    """Does deploying the same commit again publish no template version and upload nothing?"""
    changed, output = run_deploy(moto, cycle, "deploy again")
    # the only changes: a migration instance launched and terminated.
    assert changed == 2, output[-4000:]
    assert len(launch_template_versions(moto)) == 2
    assert f"Launch template {STACK} version 2 (default; latest 2)" in output
    # a refresh ran, and skipped the instances already on version 2.
    [refresh] = instance_refreshes(moto)
    assert refresh["Status"] == "Successful"
    assert f"Instances: instance refresh {refresh['InstanceRefreshId']} Successful" in output
    serving = tagged_instances(moto, **{"aws:autoscaling:groupName": STACK})
    assert sorted(i["InstanceId"] for i in serving) == cycle["serving"]
    migrators = tagged_instances(moto, Role="migrate")
    assert [m["State"]["Name"] for m in migrators] == ["terminated", "terminated"]
    # one version of each key: neither the archive nor the pointer was written again.
    versions = client(moto, "s3").list_object_versions(Bucket=BUCKET, Prefix="releases/")["Versions"]
    expected = ["releases/CURRENT", f"releases/{cycle['sha']}.tar.gz"]
    assert sorted(v["Key"] for v in versions) == sorted(expected)


def test_deploy_refuses_to_skip_instance_steps_against_aws(moto, cycle):
    """Is deploy_skip_instance_steps refused without an emulated endpoint, before anything is done?"""
    # AWS_ENDPOINT_URL stays set, so even a broken guard could only reach moto.
    _ok, changed, output = run_playbook(
        moto, "deploy.yml", *cycle["deploy_vars"], expect_failure=True, unset=("AWS_URL",)
    )
    assert changed == 0
    assert "deploy_skip_instance_steps is for an emulated endpoint (AWS_URL) only" in " ".join(output.split())
    assert len(tagged_instances(moto, Role="migrate")) == 2


def throwaway_commit(tmp_path):
    """A clone of this repository with one more commit (a new file); return (clone, commit)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / "ci-release.txt").write_text("a release only the moto cycle ships\n")
    commit = ["git", "-C", str(clone), "-c", "user.name=CI", "-c", "user.email=ci@example.com"]
    subprocess.run([*commit, "add", "ci-release.txt"], check=True)
    subprocess.run([*commit, "commit", "-q", "-m", "throwaway release"], check=True)
    sha = subprocess.run([*commit, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return clone, sha.stdout.strip()


def test_deploy_new_revision_refreshes_instances(moto, cycle, tmp_path):
    """Does a new release start a refresh keeping 100% healthy capacity that leaves every instance on it?"""
    clone, sha = throwaway_commit(tmp_path)
    _changed, output = run_deploy(moto, cycle, "deploy new", f"deploy_revision={sha}", f"deploy_repo={clone}")

    s3 = client(moto, "s3")
    assert s3.get_object(Bucket=BUCKET, Key="releases/CURRENT")["Body"].read() == f"{sha}\n".encode()
    s3.download_file(BUCKET, f"releases/{sha}.tar.gz", str(tmp_path / "release.tar.gz"))
    with tarfile.open(tmp_path / "release.tar.gz", "r:gz") as tar:
        assert tar.pax_headers["comment"] == sha
        assert b"only the moto cycle" in tar.extractfile("ci-release.txt").read()
    [template] = client(moto, "ec2").describe_launch_templates(LaunchTemplateNames=[STACK])["LaunchTemplates"]
    assert template["DefaultVersionNumber"] == template["LatestVersionNumber"] == 3
    newest = max(launch_template_versions(moto), key=lambda version: version["VersionNumber"])
    assert f'release="{sha}"' in base64.b64decode(newest["LaunchTemplateData"]["UserData"]).decode()

    refresh, _same_revision = instance_refreshes(moto)
    preferences = refresh["Preferences"]
    assert (preferences["MinHealthyPercentage"], preferences["MaxHealthyPercentage"]) == (100, 200)
    assert preferences["SkipMatching"] is True
    assert (refresh["Status"], refresh["PercentageComplete"]) == ("Successful", 100)
    assert f"Instances: instance refresh {refresh['InstanceRefreshId']} Successful" in output

    [group] = client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[STACK])[
        "AutoScalingGroups"
    ]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (2, 2, 6)
    serving = sorted(instance["InstanceId"] for instance in group["Instances"])
    assert len(serving) == 2 and not set(serving) & set(cycle["serving"])
    described = {
        instance["InstanceId"]: instance
        for instance in tagged_instances(moto, Release=sha)
        if instance["tags"].get("Role") == "web"
    }
    assert sorted(described) == serving
    for instance_id, instance in described.items():
        assert instance["State"]["Name"] == "running"
        assert instance["tags"]["aws:ec2launchtemplate:version"] == "3"
        assert f'release="{sha}"' in user_data_of(moto, instance_id)
    old = client(moto, "ec2").describe_instances(InstanceIds=cycle["serving"])["Reservations"]
    assert {instance["State"]["Name"] for r in old for instance in r["Instances"]} == {"terminated"}
    health = client(moto, "elbv2").describe_target_health(TargetGroupArn=cycle["target_group_arn"])
    assert sorted(t["Target"]["Id"] for t in health["TargetHealthDescriptions"]) == serving


def test_teardown_needs_confirmation(moto, cycle):
    """Does teardown refuse to run without the explicit confirmation, deleting nothing?"""
    _ok, changed, output = run_playbook(moto, "teardown.yml", expect_failure=True)
    assert changed == 0 and "aws_stack_confirm_teardown" in output
    assert stack_vpc(moto) is not None


def test_teardown_removes_everything(moto, cycle, capsys):
    """Does teardown with the confirmation leave only the final database snapshot behind?"""
    started = time.monotonic()
    run_playbook(moto, "teardown.yml", *documented(cycle, "teardown.yml"))
    cycle["timings"]["teardown"] = time.monotonic() - started
    assert stack_vpc(moto) is None
    assert client(moto, "rds").describe_db_instances()["DBInstances"] == []
    snapshots = client(moto, "rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith(f"{STACK}-final-") for s in snapshots] == [True]
    assert client(moto, "rds").describe_db_subnet_groups()["DBSubnetGroups"] == []
    assert client(moto, "secretsmanager").list_secrets()["SecretList"] == []
    assert client(moto, "s3").list_buckets()["Buckets"] == []
    assert client(moto, "iam").list_instance_profiles()["InstanceProfiles"] == []
    assert [r for r in client(moto, "iam").list_roles()["Roles"] if r["RoleName"].startswith(STACK)] == []
    assert client(moto, "elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert client(moto, "elbv2").describe_target_groups()["TargetGroups"] == []
    assert client(moto, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert client(moto, "ec2").describe_launch_templates()["LaunchTemplates"] == []
    instances = [i for r in client(moto, "ec2").describe_instances()["Reservations"] for i in r["Instances"]]
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    assert client(moto, "cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert client(moto, "sns").list_topics()["Topics"] == []
    assert client(moto, "cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert client(moto, "sqs").list_queues().get("QueueUrls", []) == []
    assert client(moto, "cloudfront").list_distributions()["DistributionList"].get("Items", []) == []
    assert client(moto, "logs").describe_log_groups(logGroupNamePrefix="/greenbar")["logGroups"] == []
    # every ansible-playbook line docs/deploy-aws.md leaves to this cycle ran, once each.
    assert sorted(cycle["documented_ran"]) == sorted(DOCUMENTED_RUNS)
    with capsys.disabled():
        figures = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in cycle["timings"].items())
        print(f"\nmoto cycle: {figures}, total {sum(cycle['timings'].values()):.0f}s")
