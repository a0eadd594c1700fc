#!/usr/bin/env bash
# Create a second, unprivileged Unix user for the shared-machine tests (a
# local user who pre-creates daskflow's staging root, forges a kept result or
# a checkpoint entry). Idempotent; needs root. The tests find the user by name
# (DASKFLOW_TEST_OTHER_USER, default daskflow-other) and skip, saying why,
# when it does not exist.
set -euo pipefail
name=${DASKFLOW_TEST_OTHER_USER:-daskflow-other}
[ "$(id -u)" = 0 ] || { echo "add-test-user: must run as root" >&2; exit 1; }
if ! getent passwd "$name" >/dev/null; then
    useradd --create-home --shell /bin/bash "$name"
fi
home=$(getent passwd "$name" | cut -d: -f6)
mkdir -p "$home"
chown "$name:" "$home"
chmod 700 "$home"
echo "add-test-user: $name (uid $(id -u "$name"), home $home)"
