"""`python -m deployments.dev_secrets [DIR]`: the Secret of a development Kubernetes cluster,
made once into DIR (default k8s/overlays/dev; both files git-ignored), for the overlay's
secretGenerator: `secrets.env` (random passwords and the URLs that carry them) and
`auth-signing-key.pem` (a new Ed25519 key). Files that exist are kept, so the cluster's
passwords and tokens stay valid. Staging and production take the same keys from a
secret manager instead (README, Deploy)."""

import secrets
import sys
from pathlib import Path

from actors.auth.keys import generate_key_file
from deployments.stack import DEV_ADMIN_EMAIL, ROOT

DEV_OVERLAY = ROOT / "k8s" / "overlays" / "dev"
SIGNING_KEY_FILE = "auth-signing-key.pem"


def secret_values() -> dict[str, str]:
    """Every key of the `orderflow-secrets` Secret but the signing key (a file of its own) and
    the SMTP login (AUTH_SMTP_USERNAME/_PASSWORD), added only where the SMTP server wants one."""
    postgres, rabbitmq, redis = (secrets.token_urlsafe(24) for _ in range(3))
    database = "postgresql://postgres:{}@postgres:5432/{}"
    return {
        "POSTGRES_PASSWORD": postgres,
        "RABBITMQ_DEFAULT_PASS": rabbitmq,
        "REDIS_PASSWORD": redis,
        "ORDERS_DATABASE_URL": database.format(postgres, "orders_db"),
        "AUTH_DATABASE_URL": database.format(postgres, "auth_db"),
        "NOTIFY_DATABASE_URL": database.format(postgres, "notifications_db"),
        "AMQP_URL": f"amqp://orderflow:{rabbitmq}@rabbitmq:5672/",
        "REDIS_URL": f"redis://:{redis}@redis:6379/0",
        "NOTIFY_WEBHOOK_SECRET": secrets.token_hex(32),
        "AUTH_BOOTSTRAP_ADMIN_EMAIL": DEV_ADMIN_EMAIL,
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD": secrets.token_urlsafe(16),
    }


def write(directory: Path) -> list[Path]:
    """Make the files that are missing in `directory`; returns those it wrote."""
    written = []
    env_file = directory / "secrets.env"
    if not env_file.exists():
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in secret_values().items()))
        written.append(env_file)
    key_file = directory / SIGNING_KEY_FILE
    if not key_file.exists():
        generate_key_file(key_file)
        written.append(key_file)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEV_OVERLAY
    for path in write(target):
        print(f"wrote {path}")
