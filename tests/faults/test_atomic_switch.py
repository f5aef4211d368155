"""Atomic switch: Debian's nginx runs inside host1's namespaces and serves <deploy_to>/current/public
on host1's bed address. While deploys and rollbacks alternate on host1 (CAPSTAN_FAULTS_SWITCHES of
them, default 100), a client asks for /VERSION again and again: every answer is a 200 carrying the
VERSION of the release current pointed to before or after the switch in progress. Zero errors."""

from __future__ import annotations

import http.client
import os
import re
import signal
import threading

import pytest

from harness import bed, nothing_lost

# Even, so that host1 ends where the other hosts are (each rollback undoes the deploy before it).
SWITCHES = max(2, int(os.environ.get('CAPSTAN_FAULTS_SWITCHES', '100')) // 2 * 2)
PORT = 8080
PACE = 0.005              # seconds between requests: at most 200 a second, leaving the cores to the runs
MAX_REQUESTS = 1000000    # a bound on the client, whatever happens
NGINX = '''\
worker_processes 1;
daemon on;
pid {top}/nginx.pid;
error_log {top}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {top}/body;
    proxy_temp_path {top}/proxy;
    fastcgi_temp_path {top}/fastcgi;
    uwsgi_temp_path {top}/uwsgi;
    scgi_temp_path {top}/scgi;
    server {{
        listen {address}:{port};
        root {deploy_to}/current/public;
    }}
}}
'''


class Client(threading.Thread):
    """GET /VERSION on one keep-alive connection, paced and bounded, each answer checked against
    what was allowed from the moment it was asked to the moment it came back."""

    def __init__(self, address):
        super(Client, self).__init__(daemon=True)
        self.address = address
        self.allowed = []     # one set of versions per phase, appended as the test moves on
        self.requests = 0
        self.errors = []
        self.stop = threading.Event()

    def expect(self, *versions):
        self.allowed.append(set(versions))

    def run(self):
        connection = None
        while not self.stop.is_set() and self.requests < MAX_REQUESTS:
            first = len(self.allowed) - 1
            try:
                connection = connection or http.client.HTTPConnection(self.address, PORT, timeout=10)
                connection.request('GET', '/VERSION')
                response = connection.getresponse()
                body = response.read().decode('utf-8', 'replace').strip()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append('request %d: %s' % (self.requests, exc))
                connection.close()
                connection = None
            else:
                allowed = set().union(*self.allowed[first:])
                if response.status != 200 or body not in allowed:
                    self.errors.append('request %d: %d %r, expected one of %s' % (
                        self.requests, response.status, body[:80], sorted(allowed)))
            self.requests += 1
            self.stop.wait(PACE)
        if connection:
            connection.close()


def address_of(fleet, host):
    with open(str(fleet.inventory)) as handle:
        return re.search(r'^%s ansible_host=(\S+)' % host, handle.read(), re.M).group(1)


# 100 playbook runs on one host: about 12 minutes with the other cases beside it (pytest.ini's bound is 20).
@pytest.mark.timeout(3600)
def test_nginx_serving_current_answers_every_request_with_a_whole_release(case):
    host = case.fleet.names[0]
    top = str(case.workdir / 'nginx')
    os.makedirs(top)
    conf = os.path.join(top, 'nginx.conf')
    with open(conf, 'w') as handle:
        handle.write(NGINX.format(top=top, address=address_of(case.fleet, host), port=PORT, deploy_to=case.deploy_to))
    started = bed.run_on(1, ['nginx', '-c', conf])
    assert started.returncode == 0, started.stderr
    with open(os.path.join(top, 'nginx.pid')) as handle:
        master = int(handle.read())
    case.cleanups.append(lambda: os.kill(master, signal.SIGQUIT))

    client = Client(address_of(case.fleet, host))
    client.expect('v3')
    client.start()
    live = 'v3'
    try:
        for index in range(SWITCHES):
            if index % 2 == 0:
                version = 'd%d' % index
                argv = case.command('deploy', version=version, deploy_hosts=host)
            else:
                version = 'v3'
                argv = case.command('rollback', deploy_hosts=host)
            client.expect(live, version)
            run = case.run(argv)
            assert run.rc == 0, run
            assert case.look()[0]['version'] == version, case.look()[0]
            client.expect(version)
            live = version
    finally:
        client.stop.set()
        client.join(30)
    assert client.requests > 0 and not client.errors, '%d of %d requests went wrong during %d switches: %s' % (
        len(client.errors), client.requests, SWITCHES, client.errors[:10])
    nothing_lost(case)
