"""The Ansible side that needs no AWS: lint, syntax, and the roles applied to this machine.

configure.yml (what every new instance runs on itself) is applied here with
connection local, as far as a machine without systemd allows: the common role
creates the app user, the app role unpacks a release of this repository and
writes the environment file from a Secrets Manager secret (on a local moto
server) and the systemd unit, the nginx role renders the site into a copy of
this machine's /etc/nginx and has ``nginx -t`` accept the whole config. Only
starting the services is left out (the roles skip it without systemd); the
machine test in test_nginx_gunicorn.py runs the same nginx site and gunicorn
settings as real processes instead.
"""

import json
import os
import re
import shutil
import subprocess
import tarfile

import boto3
import pytest

from tests.infra.conftest import ANSIBLE_DIR
from tests.infra.conftest import REPO
from tests.infra.conftest import free_port
from tests.infra.conftest import moto_answers
from tests.infra.conftest import render_nginx_site
from tests.infra.conftest import require_program
from tests.infra.conftest import stop_process
from tests.infra.conftest import wait_until

pytestmark = pytest.mark.infra

PLAYBOOKS = ["provision.yml", "deploy.yml", "teardown.yml", "configure.yml"]
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def ansible_env(**extra):
    """Environment for the ansible tools: the repository's ansible.cfg, no colour."""
    return dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)


def test_ansible_lint_production_profile():
    """Do all playbooks and roles pass ansible-lint's production profile?"""
    lint = require_program("ansible-lint")
    result = subprocess.run(
        [lint, "--offline"], cwd=ANSIBLE_DIR, env=ansible_env(), capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Profile 'production' was required, and it passed" in output


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook):
    """Does every playbook pass ansible-playbook --syntax-check?"""
    inventory = "inventories/production/hosts.yml"
    command = [require_program("ansible-playbook"), "--syntax-check", "-i", inventory, playbook]
    result = subprocess.run(
        command, cwd=ANSIBLE_DIR, env=ansible_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_playbook_is_checked():
    """Is every playbook in ansible/ covered by the syntax check above?"""
    assert sorted(p.name for p in ANSIBLE_DIR.glob("*.yml")) == sorted(PLAYBOOKS)


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory):
    """A moto server holding the secret an instance reads; stopped (only it) afterwards."""
    log = tmp_path_factory.mktemp("moto-local") / "moto.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [require_program("moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=output, stderr=output
        )
    try:
        wait_until(lambda: moto_answers(url), 30, "moto_server to answer")
        credentials = {
            "username": "greenbar",
            "password": "p@ss/word+1",
            "dbname": "greenbar",
            "secret_key": "k" * 64,
        }
        boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_secret(Name="greenbar-local/app", SecretString=json.dumps(credentials))
        yield {"url": url, "credentials": credentials}
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def machine(tmp_path_factory, secret_store):
    """Paths and variables for applying configure.yml to this machine under a temp root."""
    require_program("nginx")
    root = tmp_path_factory.mktemp("local")
    nginx_dir = root / "etc-nginx"
    shutil.copytree("/etc/nginx", nginx_dir, symlinks=True)
    main_conf = nginx_dir / "nginx.conf"
    main_conf.write_text(main_conf.read_text().replace("/etc/nginx/", f"{nginx_dir}/"))
    release = root / "greenbar-ci.tar.gz"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={release}", "HEAD"], check=True
    )
    settings = {
        "app_release": "ci",
        "app_root": str(root / "opt"),
        "app_release_archive": str(release),
        # building the venv would download the app's requirements from PyPI.
        "app_build_venv": False,
        "app_env_file": str(root / "etc-greenbar" / "greenbar.env"),
        "app_systemd_dir": str(root / "systemd"),
        "app_secret_id": "greenbar-local/app",
        "app_db_host": "db.internal",
        "app_aws_environment": {
            "AWS_ENDPOINT_URL": secret_store["url"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
        "app_max_upload_mb": 50,
        "app_external_url": "https://greenbar.example.test",
        "common_install_packages": False,
        "common_manage_timezone": False,
        "nginx_conf_dir": str(nginx_dir),
        "nginx_max_body_mb": 50,
        "nginx_access_log": str(root / "greenbar.access.log"),
        "nginx_error_log": str(root / "greenbar.error.log"),
        "nginx_trusted_proxies": ["10.20.0.0/16"],
    }
    (root / "systemd").mkdir()
    return {"root": root, "nginx_dir": nginx_dir, "settings": settings}


def apply_configure(machine):
    """Run configure.yml on this machine (connection local); return (changed, output)."""
    command = [
        require_program("ansible-playbook"),
        "--connection",
        "local",
        "--inventory",
        "localhost,",
        "configure.yml",
        "--extra-vars",
        json.dumps(machine["settings"]),
        # we are root already, and the machine may have no sudo.
        "--extra-vars",
        "ansible_become=false",
        "--extra-vars",
        "ansible_python_interpreter=" + str(require_program("python")),
    ]
    result = subprocess.run(
        command, cwd=ANSIBLE_DIR, env=ansible_env(), capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return int(RECAP.search(output).group(2)), output


@pytest.fixture(scope="module")
def applied(machine):
    """configure.yml applied once, with its output."""
    changed, output = apply_configure(machine)
    return {"changed": changed, "output": output}


def test_nginx_role_renders_the_one_site_and_nginx_accepts_it(machine, applied):
    """Is the site the role wrote exactly its template rendered, enabled, and accepted by nginx -t?"""
    nginx_dir = machine["nginx_dir"]
    site_vars = {
        name: value
        for name, value in machine["settings"].items()
        if name.startswith("nginx_") and name != "nginx_conf_dir"
    }
    written = (nginx_dir / "sites-available" / "greenbar.conf").read_text()
    assert written == render_nginx_site(**site_vars)
    assert "client_max_body_size 50m;" in written and "set_real_ip_from 10.20.0.0/16;" in written
    enabled = nginx_dir / "sites-enabled" / "greenbar.conf"
    assert enabled.resolve() == nginx_dir / "sites-available" / "greenbar.conf"
    assert not (nginx_dir / "sites-enabled" / "default").exists()
    assert "Check the whole nginx configuration." in applied["output"]
    check = subprocess.run(
        [require_program("nginx"), "-t", "-c", str(nginx_dir / "nginx.conf")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_app_role_writes_release_environment_and_unit(machine, applied, secret_store):
    """Are the release unpacked, the env file filled from Secrets Manager, and the unit written?"""
    settings = machine["settings"]
    opt = machine["root"] / "opt"
    assert (opt / "current").resolve() == opt / "releases" / "ci"
    with tarfile.open(settings["app_release_archive"]) as archive:
        assert "wsgi.py" in archive.getnames()
    assert (opt / "current" / "wsgi.py").exists() and (opt / "current" / "gunicorn.conf.py").exists()
    env_file = machine["root"] / "etc-greenbar" / "greenbar.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"
    env = dict(
        line.split("=", 1)
        for line in env_file.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    credentials = secret_store["credentials"]
    # the password's URL-special characters are escaped in the URL.
    assert (
        env["DATABASE_URL"]
        == "mysql+pymysql://greenbar:p%40ss%2Fword%2B1@db.internal:3306/greenbar?charset=utf8mb4"
    )
    assert env["SECRET_KEY"] == credentials["secret_key"]
    assert env["GREENBAR_MAX_UPLOAD_MB"] == "50"
    assert env["GREENBAR_GUNICORN_BIND"] == "unix:/run/greenbar/gunicorn.sock"
    # mailed links are built on the address users open; cookies go over HTTPS only
    assert env["GREENBAR_EXTERNAL_URL"] == "https://greenbar.example.test"
    assert env["GREENBAR_SECURE_COOKIES"] == "on"
    unit = (machine["root"] / "systemd" / "greenbar.service").read_text()
    gunicorn = f"{opt}/current/.venv/bin/gunicorn --config {opt}/current/gunicorn.conf.py wsgi:app"
    assert f"ExecStart={gunicorn}" in unit
    assert "User=greenbar" in unit and "Group=www-data" in unit and f"EnvironmentFile={env_file}" in unit
    assert credentials["password"] not in applied["output"]


def test_app_role_schedules_retention_daily(machine, applied):
    """Is `flask retention run` a oneshot service with a daily, spread-out timer?"""
    opt = machine["root"] / "opt"
    service = (machine["root"] / "systemd" / "greenbar-retention.service").read_text()
    assert f"ExecStart={opt}/current/.venv/bin/flask --app wsgi retention run" in service
    assert "Type=oneshot" in service and "User=greenbar" in service
    timer = (machine["root"] / "systemd" / "greenbar-retention.timer").read_text()
    assert "OnCalendar=*-*-* 03:30:00" in timer and "RandomizedDelaySec=1h" in timer
    assert "Persistent=true" in timer


def test_second_application_changes_nothing(machine, applied):
    """Does applying configure.yml again report changed=0?"""
    assert applied["changed"] > 0
    changed, output = apply_configure(machine)
    assert changed == 0, output[-4000:]


def inventory_groups(moto_url, region):
    """The groups and hosts the aws_ec2 inventory finds on moto with AWS_REGION=``region``."""
    env = ansible_env(
        AWS_URL=moto_url,
        AWS_REGION=region,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.pop("AWS_DEFAULT_REGION", None)
    env.pop("AWS_PROFILE", None)
    command = [require_program("ansible-inventory"), "-i", "inventories/production/aws_ec2.yml", "--list"]
    result = subprocess.run(command, cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    listing = json.loads(result.stdout)
    return {name: set(group.get("hosts", [])) for name, group in listing.items() if name != "_meta"}


def test_dynamic_inventory_takes_its_region_from_aws_region(secret_store):
    """Does the aws_ec2 inventory look in the region AWS_REGION names, as the playbooks do, and only there?"""
    ec2 = boto3.client(
        "ec2",
        endpoint_url=secret_store["url"],
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [
        {"Key": "Application", "Value": "greenbar"},
        {"Key": "Environment", "Value": "production"},
        {"Key": "Role", "Value": "web"},
    ]
    launched = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )
    [instance] = launched["Instances"]
    assert inventory_groups(secret_store["url"], "eu-west-1")["role_web"] == {instance["InstanceId"]}
    assert "role_web" not in inventory_groups(secret_store["url"], "us-west-2")
