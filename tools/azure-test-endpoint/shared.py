"""Loads the plumbing shared with the sibling test endpoints (loopback.py
listeners, faults.py rule board, launcher.py process helper) through the
Vault endpoint's loader, under distinct module names."""
import importlib.util
from pathlib import Path

_LOADER = Path(__file__).resolve().parent.parent / "vault-test-endpoint" / "aws_endpoint.py"
_spec = importlib.util.spec_from_file_location("azure_endpoint_shared_loader", _LOADER)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
load = _module.load
