"""Loads a module of the sibling AWS test endpoint (one AEAD and one fault
board for both tools) under a distinct name, so that its errors.py and
faults.py never shadow this endpoint's own modules."""
import importlib.util
import sys
from pathlib import Path

AWS_DIR = Path(__file__).resolve().parent.parent / "aws-test-endpoint"


def load(name):
    qualified = "aws_test_endpoint_" + name
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, AWS_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]
