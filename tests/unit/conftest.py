"""Shared fixtures; the helpers the tests share are functions in helpers.py."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
import types

import pytest

from ansible_collections.capstan.release.tests.unit.helpers import GIT_ENV, make_app

# The loopback web server stops after this many seconds whatever happens (the fixture stops it sooner).
SERVER_LIFETIME = 300


@pytest.fixture
def deploy_to(tmp_path):
    """An absolute deploy_to that does not exist yet."""
    return str(tmp_path / 'srv' / 'app')


class _GitHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the served directory, to a client that sends the Basic credential only."""

    def log_message(self, *args):
        del args

    def do_GET(self):
        if self.headers.get('Authorization') != self.server.expected:
            self.server.refused += 1
            self.send_response(401)
            self.send_header('WWW-Authenticate', 'Basic realm="capstan"')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        super(_GitHandler, self).do_GET()


@pytest.fixture
def http_origin(tmp_path):
    """A bare repository (one commit on main) served by git's dumb HTTP on 127.0.0.1, behind Basic auth.

    ``url`` has the credential in it (``http://deployer:<secret>@127.0.0.1:<port>/app.git``),
    ``public`` is the same URL without it; ``work`` is a clone to make more commits in.
    """
    secret = 's3cret-' + os.urandom(6).hex()
    work, bare = str(tmp_path / 'origin-work'), str(tmp_path / 'served' / 'app.git')
    os.makedirs(work)
    make_app(work)
    for args in (['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-q', '-m', 'one'], ['clone', '-q', '--bare', work, bare]):
        subprocess.run(['git'] + args, cwd=work, env=dict(os.environ, **GIT_ENV), check=True, capture_output=True)
    subprocess.run(['git', 'update-server-info'], cwd=bare, check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), lambda *args: _GitHandler(*args, directory=os.path.dirname(bare)))
    server.expected = 'Basic ' + base64.b64encode(('deployer:%s' % secret).encode()).decode()
    server.refused = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    watchdog = threading.Timer(SERVER_LIFETIME, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    address = '127.0.0.1:%d' % server.server_address[1]
    try:
        yield types.SimpleNamespace(secret=secret, url='http://deployer:%s@%s/app.git' % (secret, address),
                                    public='http://%s/app.git' % address, work=work, bare=bare, server=server)
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(10)
