"""``python -m infra.twin`` (``make twin``): run ``build/template.json`` on this machine until Ctrl-C.

    python -m infra.twin [--template build/template.json] [--stack mycontroller] [--parameter Name=value ...]

``MC_ADMIN_PASSWORD`` becomes the template's admin password parameter. When ready, ``build/twin.json`` holds the
URLs and endpoints (``api``, ``ws``, ``console``, ``aws_endpoint``, ``iot_endpoint``, ``iot_ca``, ``stack``) and one
line says so. Devices join as on AWS: ``AWS_ENDPOINT_URL=<aws_endpoint> python -m infra.provision --thing <name>
--stack <stack>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import InfraError
from .twin import ROOT, Options, Twin


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.twin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=ROOT / "build" / "template.json")
    parser.add_argument("--stack", default=os.environ.get("STACK", "mycontroller"))
    parser.add_argument("--region", default=os.environ.get("REGION") or os.environ.get("AWS_REGION") or "us-east-1")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--state-dir", type=Path, default=ROOT / "build" / "twin")
    parser.add_argument("--info", type=Path, default=ROOT / "build" / "twin.json", help="where twin.json goes")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TWIN_PORT", "0") or 0),
                        help="the API/websocket/console port (default: a free one)")
    parser.add_argument("--aws-port", type=int, default=0, help="the AWS endpoint's port (default: a free one)")
    parser.add_argument("--iot-host", help="the loopback address whose port 8883 is the broker (default: a free one)")
    parser.add_argument("--concurrency", type=int, default=1, help="workers per function at most (default 1)")
    parser.add_argument("--retry-after", type=float, default=None,
                        help="tests: failed SQS records come back after this many seconds, not the visibility timeout")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for name in ("botocore", "boto3", "urllib3", "werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not args.template.is_file():
        print(f"twin: {args.template} does not exist: run `make package` first", file=sys.stderr)
        return 2
    parameters = {}
    for item in args.parameter:
        name, _, value = item.partition("=")
        parameters[name] = value
    twin = Twin(Options(template=args.template, stack=args.stack, region=args.region, state_dir=args.state_dir,
                        info_path=args.info, parameters=parameters,
                        admin_password=os.environ.get("MC_ADMIN_PASSWORD") or None, api_port=args.port,
                        aws_port=args.aws_port, iot_host=args.iot_host, concurrency=args.concurrency,
                        retry_after_s=args.retry_after))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        try:
            info = twin.start()
        except InfraError as error:
            print(f"twin: {error}", file=sys.stderr)
            return 2
        print(f"twin ready ({args.info}): console {info['console']}  api {info['api']}  ws {info['ws']}  "
              f"iot {info['iot_endpoint']}:8883 -- devices join with: AWS_ENDPOINT_URL={info['aws_endpoint']} "
              f"MC_IOT_ROOT_CA={info['iot_ca']} python -m infra.provision --thing <name> --stack {info['stack']}",
              flush=True)
        stop.wait()
    finally:
        twin.stop()
        if args.info.is_file() and twin.info and json.loads(args.info.read_text()).get("pid") == os.getpid():
            args.info.unlink()  # a stopped twin's URLs lead nowhere
    return 0


if __name__ == "__main__":
    sys.exit(main())
