"""The live config on the real app: what is in force is visible to admins only."""

from __future__ import annotations


def test_admin_config_shows_the_config_in_force(admin, http):
    view = admin.get("/admin/config")
    assert view.status_code == 200
    body = view.json()
    assert body["applied"] >= 1 and body["last_rejected"] is None
    assert body["config"]["routing"]["learned"]["thresholds"]["mode"] in ("share", "probability")
    assert body["config"]["limits"] is None  # `gateway serve`: the settings tree's limits apply
    denied = http.get("/admin/config")
    assert denied.status_code == 401 and denied.json()["error"]["type"]
