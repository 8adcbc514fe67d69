"""``/healthz`` for the load balancer."""

from webapp import create_app


def test_healthz_ok_without_login(client):
    """Does a healthy app answer 200 to an anonymous health check?"""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_healthz_503_when_database_unreachable(tmp_path, monkeypatch):
    """Does the check turn 503 when the database cannot be reached?"""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": "mysql+pymysql://nobody@127.0.0.1:1/none?connect_timeout=1",
            "SQLALCHEMY_ENGINE_OPTIONS": {},
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"


def test_request_id_is_echoed(client):
    """Is nginx's request id echoed so a reply can be matched to a log line?"""
    response = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["X-Request-ID"] == "abc123"
