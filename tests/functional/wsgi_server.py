# SPDX-License-Identifier: Apache-2.0
"""Serve a WSGI application on 127.0.0.1 (threaded, standard library only):
``python -m tests.functional.wsgi_server module:attribute PORT``."""
from __future__ import annotations

import importlib
import socketserver
import sys
from wsgiref import simple_server


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("wsgi: " + (format % args) + "\n")


def main() -> None:
    target, port = sys.argv[1], int(sys.argv[2])
    module, _, attr = target.partition(":")
    # The application parses sys.argv as its own command line.
    sys.argv = sys.argv[:1]
    app = getattr(importlib.import_module(module), attr)
    if app is None:
        sys.exit("%s is None: the application did not boot" % target)
    server = simple_server.make_server("127.0.0.1", port, app,
                                       server_class=_Server,
                                       handler_class=_Quiet)
    server.serve_forever()


if __name__ == "__main__":
    main()
