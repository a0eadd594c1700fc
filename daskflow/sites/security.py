"""TLS for a profile's cluster: ``security: tls`` (certificates generated for
this run) or ``{tls_ca_file, tls_cert, tls_key}`` (the site's own files)."""

from __future__ import annotations

import os
import tempfile

from distributed.security import Security


def cluster_security(setting) -> Security | None:
    """The ``Security`` of every role (scheduler, workers, client), or None."""
    if setting == "none":
        return None
    if setting == "tls":
        return Security.temporary()
    ca, cert, key = setting["tls_ca_file"], setting["tls_cert"], setting["tls_key"]
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key,
                    tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def with_files(security: Security, directory: str) -> Security:
    """A copy whose worker certificates are files (for batch jobs, which start
    workers from a script): in-memory ones are written under ``directory``,
    readable by their owner only."""
    config = security.get_tls_config_for_role("worker")
    if not any(v and "\n" in v for v in config.values()):
        return security
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = {}
    for name, value in config.items():
        if value and "\n" in value:
            fd, path = tempfile.mkstemp(prefix=f"worker-{name}-", suffix=".pem", dir=directory)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            os.chmod(path, 0o600)
            paths[name] = path
    return Security(tls_ca_file=paths.get("ca_file", config.get("ca_file")),
                    tls_worker_cert=paths.get("cert", config.get("cert")),
                    tls_worker_key=paths.get("key", config.get("key")),
                    tls_client_cert=paths.get("cert", config.get("cert")),
                    tls_client_key=paths.get("key", config.get("key")),
                    require_encryption=True)
