"""Run moto with the CloudWatch CBOR bridge on 127.0.0.1.

    python tests/emulator/server.py [--port 0] [--port-file PATH]

Port 0 picks a free port. Once the socket is listening, the port is written to --port-file (atomically,
so a reader never sees a partial number) and printed.
"""

import argparse
import os

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from bridge import make_app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--port-file", help="file to write the chosen port to once listening")
    args = parser.parse_args()

    server = make_server(
        "127.0.0.1", args.port, make_app(), threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_port
    if args.port_file:
        partial = f"{args.port_file}.partial"
        with open(partial, "w") as file:
            file.write(f"{port}\n")
        os.replace(partial, args.port_file)
    print(f"emulator listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
