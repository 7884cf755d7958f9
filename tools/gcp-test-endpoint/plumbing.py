"""The shared test-endpoint plumbing (tools/aws-test-endpoint: loopback.py,
faults.py, launcher.py), loaded through the Vault endpoint's loader under
distinct module names so nothing shadows this endpoint's own modules."""
import sys
from pathlib import Path

_VAULT_DIR = str(Path(__file__).resolve().parent.parent / "vault-test-endpoint")
if _VAULT_DIR not in sys.path:
    sys.path.append(_VAULT_DIR)

from aws_endpoint import load  # noqa: E402  (after the path is set)

loopback = load("loopback")
faults = load("faults")
launcher = load("launcher")
