"""``gateway policy test`` and ``gateway policy eval`` for the gateway's argparse CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.policy.testing import DEFAULT_TEST_PATHS, eval_policy, run_policy_tests


def _test(args: argparse.Namespace) -> int:
    return run_policy_tests(args.paths or DEFAULT_TEST_PATHS, args.verbose, args.coverage, args.opa)


def _eval(args: argparse.Namespace) -> int:
    from gateway.config import load_config
    from gateway.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc)
        return 2
    base_dir = Path(config.source).parent if config.source else Path.cwd()
    return eval_policy(config.policy, args.input, base_dir)


def add_policy_commands(subparsers: Any) -> None:
    """Register ``policy test`` and ``policy eval``; each sets ``func(args) -> exit code``."""
    policy = subparsers.add_parser("policy", help="test and evaluate the Rego policies")
    commands = policy.add_subparsers(dest="policy_command", required=True)

    test = commands.add_parser("test", help="run the test_ rules of *_test.rego files (like `opa test`)")
    test.add_argument(
        "paths", nargs="*", help=f"policy and test paths (default: {' '.join(DEFAULT_TEST_PATHS)})"
    )
    test.add_argument("-v", "--verbose", action="store_true", help="print every test, not only failures")
    test.add_argument("--coverage", action="store_true", help="print which policy lines the tests cover")
    test.add_argument("--opa", action="store_true", help="run the `opa test` binary on PATH instead")
    test.set_defaults(func=_test)

    evaluate = commands.add_parser("eval", help="print the decision for an input document")
    evaluate.add_argument(
        "--input", required=True, help='JSON input document (or {"input": ...}); - for stdin'
    )
    evaluate.add_argument("--config", default=None, help="gateway config file (default: $GATEWAY_CONFIG)")
    evaluate.set_defaults(func=_eval)
