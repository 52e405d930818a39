"""What a local run deploys (deployments/stack.py): serve_config.yaml, the one place of the
applications' scaling and replica options, with the settings of a local run in the
runtime_env of each application that reads them, its secrets nowhere in it, and this
process's environment left as it was."""

import os
from pathlib import Path

import pytest
import yaml

from deployments.stack import SERVE_CONFIG, StackSettings, local_environments, serve_config

REPLICA_OPTIONS = ("max_ongoing_requests", "autoscaling_config", "ray_actor_options")


@pytest.fixture
def stack(tmp_path, monkeypatch):
    for variable in ("AUTH_URL", "PUBLIC_URL", "REPORTS_DIR", "NOTIFY_WEBHOOK_SECRET", "NOTIFY_WEBHOOK_SECRET_FILE", "AUTH_SIGNING_KEY",
                     "AUTH_SIGNING_KEY_FILE", "AUTH_BOOTSTRAP_ADMIN_EMAIL", "AUTH_BOOTSTRAP_ADMIN_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    return StackSettings(run_dir=tmp_path / "run", serve_port=20001, gateway_port=20002)


def env_vars(config: dict) -> dict[str, dict[str, str]]:
    return {app["name"]: app.get("runtime_env", {}).get("env_vars", {}) for app in config["applications"]}


def test_every_deployment_declares_its_replica_options_in_the_file():
    # The @serve.deployment decorators declare none: an option missing here is Ray's default
    # (e.g. 5 ongoing requests), not what the decorator used to say.
    for application in yaml.safe_load(SERVE_CONFIG.read_text())["applications"]:
        for deployment in application["deployments"]:
            assert set(REPLICA_OPTIONS) <= set(deployment), (application["name"], deployment["name"])


def test_each_application_gets_the_settings_it_reads_and_no_other(stack):
    before = dict(os.environ)
    config = serve_config(stack, local_environments(stack))
    assert dict(os.environ) == before  # nothing reaches the replicas by inheritance

    given = env_vars(config)
    assert given["orders"] == {"AUTH_URL": "http://127.0.0.1:20001/auth"}
    assert set(given["auth"]) == {"AUTH_SIGNING_KEY_FILE", "AUTH_BOOTSTRAP_ADMIN_EMAIL",
                                  "AUTH_BOOTSTRAP_ADMIN_PASSWORD", "PUBLIC_URL"}
    assert given["auth"]["AUTH_SIGNING_KEY_FILE"] == str((stack.run_dir / "keys" / "auth-ed25519.pem").resolve())
    assert given["notification"] == {"AUTH_URL": "http://127.0.0.1:20001/auth", "PUBLIC_URL": "http://127.0.0.1:20002",
                                     "NOTIFY_WEBHOOK_SECRET_FILE": str((stack.run_dir / "webhook-secret").resolve())}
    assert given["auth"]["PUBLIC_URL"] == "http://127.0.0.1:20002"
    assert given["analytics"] == {"AUTH_URL": "http://127.0.0.1:20001/auth",
                                  "REPORTS_DIR": str(Path("reports").resolve())}


def test_a_setting_of_the_environment_is_left_to_it(stack, monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://shop.example.com")
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", "")  # webhooks off
    given = env_vars(serve_config(stack, local_environments(stack)))
    assert not any("PUBLIC_URL" in env for env in given.values())
    assert "NOTIFY_WEBHOOK_SECRET_FILE" not in given["notification"]
    assert not (stack.run_dir / "webhook-secret").exists()


def test_the_webhook_secret_is_made_once_and_kept_out_of_the_config(stack):
    # Ray's runtime_env agent logs env_vars: the config carries the secret file's path only.
    config = serve_config(stack, local_environments(stack))
    secret_file = stack.run_dir / "webhook-secret"
    secret = secret_file.read_text()
    assert len(secret) == 64 and secret_file.stat().st_mode & 0o777 == 0o600
    assert secret not in str(config)
    serve_config(stack, local_environments(stack))
    assert secret_file.read_text() == secret  # made once


def test_the_notification_service_reads_its_webhook_secret_from_the_file(tmp_path, monkeypatch):
    from actors.notification.settings import NotificationSettings

    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text("s3cret-from-a-file\n")
    monkeypatch.delenv("NOTIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET_FILE", str(secret_file))
    assert NotificationSettings().webhook_secret == "s3cret-from-a-file"
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="NOTIFY_WEBHOOK_SECRET_FILE .* cannot be read"):
        NotificationSettings()


def test_the_mail_sink_is_the_auth_applications_smtp_server(stack):
    class Sink:
        host, port = "127.0.0.1", 20003

    given = env_vars(serve_config(stack, local_environments(stack, Sink())))
    assert given["auth"]["AUTH_SMTP_HOST"] == "127.0.0.1" and given["auth"]["AUTH_SMTP_PORT"] == "20003"
    assert not any("AUTH_SMTP_HOST" in env for name, env in given.items() if name != "auth")


def test_the_files_own_options_stay_as_written(stack):
    written = yaml.safe_load(SERVE_CONFIG.read_text())
    deployed = serve_config(stack, local_environments(stack))
    assert [app["deployments"] for app in deployed["applications"]] == \
        [app["deployments"] for app in written["applications"]]
    assert deployed["logging_config"] == written["logging_config"]
    assert deployed["http_options"] == written["http_options"] | {"host": "127.0.0.1", "port": 20001}
