"""The "Connect your CI" page and the client download: snippets for three CIs, a wheel pip can install."""

import io
import subprocess
import sys
import zipfile

from tests.factories import make_instance
from webapp import client_dist

WHEEL = f"/api/client/{client_dist.filename()}"


def test_connect_page_shows_the_three_snippets(app, client, auth):
    """Each CI gets its snippet with this server's address, the instance and the client's pip URL."""
    with app.app_context():
        instance_id = make_instance("shop").id
    auth.as_role("viewer")
    page = client.get(f"/instances/{instance_id}/connect")
    assert page.status_code == 200
    text = page.text
    for heading in ("GitHub Actions", "GitLab CI", "Jenkins", "Without the client"):
        assert f">{heading}</h2>" in text
    assert "GREENBAR_INSTANCE: shop" in text and "GREENBAR_INSTANCE = 'shop'" in text
    assert f'pip install "http://$GREENBAR_USER:$GREENBAR_TOKEN@localhost{WHEEL}"' in text
    assert "${{ secrets.GREENBAR_TOKEN }}" in text
    assert "<script>" not in text and "style=" not in text
    instance_page = client.get(f"/instances/{instance_id}")
    assert f'href="/instances/{instance_id}/connect"' in instance_page.text


def test_connect_page_needs_login_and_a_real_instance(app, client, auth):
    """Strangers go to the login page; an unknown instance is a friendly 404."""
    assert client.get("/instances/1/connect").status_code == 302
    auth.as_role("viewer")
    assert client.get("/instances/999/connect").status_code == 404


def test_wheel_downloads_with_a_token_and_installs(app, client, token_auth, tmp_path):
    """Any role's token fetches the wheel; pip installs it with the greenbar command and the pytest plugin."""
    assert client.get(WHEEL).status_code == 401
    headers = token_auth("viewer")
    assert client.get("/api/client/greenbar_client-9.9-py3-none-any.whl", headers=headers).status_code == 404
    response = client.get(WHEEL, headers=headers)
    assert response.status_code == 200
    assert response.data == client_dist.wheel()
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    assert "greenbar_client/plugin.py" in names and "greenbar_client/cli.py" in names
    wheel = tmp_path / client_dist.filename()
    wheel.write_bytes(response.data)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    info = target / "greenbar_client-0.1.0.dist-info"
    assert "greenbar = greenbar_client.plugin" in (info / "entry_points.txt").read_text()
    assert "Requires-Dist: requests==" in (info / "METADATA").read_text()
    version = subprocess.run(
        [str(target / "bin" / "greenbar"), "--version"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target)},
        check=False,
    )
    assert version.stdout.strip() == "greenbar-client 0.1.0", version.stderr
