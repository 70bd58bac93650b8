# SPDX-License-Identifier: Apache-2.0
"""A real Neutron for the tests: RabbitMQ, MariaDB on a private datadir,
the schema made by ``neutron-db-manage``, the API (Neutron's WSGI
application under a small threaded WSGI server) and ``neutron-rpc-server``,
ML2 with vio4wd's mechanism driver.  Everything on loopback (the tests run
in their own network namespace) and stopped by the PIDs started here.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from typing import Any

BIN = os.path.dirname(sys.executable)
RABBIT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
# Neutron's own paste pipeline, as pip installs it.
PASTE = os.path.join(sys.prefix, "etc", "neutron", "api-paste.ini")
AGENT_DOWN_TIME = 12          # s: Neutron calls an agent dead after this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, deadline: float, what: str,
              proc: subprocess.Popen | None = None, log: str = "") -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited (%s): %s" % (
                what, proc.returncode, _tail(log)))
        if time.monotonic() > deadline:
            raise RuntimeError("%s not listening on %d: %s" % (
                what, port, _tail(log)))
        time.sleep(0.2)


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class NeutronStack:
    def __init__(self, base: str) -> None:
        self.base = base
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.amqp_port = free_port()
        self.epmd_port = free_port()
        self.dist_port = free_port()
        self.api_port = free_port()
        self.db_sock = os.path.join(base, "mysql.sock")
        self.conf = os.path.join(base, "neutron.conf")
        self.ml2_conf = os.path.join(base, "ml2_conf.ini")
        self.rpc_log = os.path.join(base, "neutron-rpc.log")
        self.api_log = os.path.join(base, "neutron-api.log")

    @property
    def transport_url(self) -> str:
        return "rabbit://guest:guest@127.0.0.1:%d/" % self.amqp_port

    @property
    def api(self) -> str:
        return "http://127.0.0.1:%d" % self.api_port

    def _spawn(self, name: str, cmd: list[str], log: str,
               env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=open(log, "ab"),
                                stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    # ---- RabbitMQ ------------------------------------------------------
    def _start_rabbit(self) -> subprocess.Popen:
        home = os.path.join(self.base, "rabbit")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, ERL_EPMD_PORT=str(self.epmd_port),
                   ERL_EPMD_ADDRESS="127.0.0.1",
                   RABBITMQ_NODENAME="v4wtest@localhost",
                   RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                   RABBITMQ_NODE_PORT=str(self.amqp_port),
                   RABBITMQ_DIST_PORT=str(self.dist_port),
                   RABBITMQ_MNESIA_BASE=os.path.join(home, "mnesia"),
                   RABBITMQ_LOG_BASE=os.path.join(home, "log"),
                   RABBITMQ_CONFIG_FILE=os.path.join(home, "rabbitmq"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(home,
                                                              "plugins"),
                   RABBITMQ_PID_FILE=os.path.join(home, "rabbit.pid"))
        with open(os.path.join(home, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n"
                    "management.tcp.ip = 127.0.0.1\n" % self.amqp_port)
        with open(os.path.join(home, "plugins"), "w") as f:
            f.write("[].\n")
        # Our own epmd, on a private port, so that we own (and stop) it.
        self._spawn("epmd", ["epmd", "-port", str(self.epmd_port),
                             "-address", "127.0.0.1"],
                    os.path.join(self.base, "epmd.log"), env)
        return self._spawn("rabbitmq", [RABBIT],
                           os.path.join(self.base, "rabbitmq.log"), env)

    # ---- MariaDB -------------------------------------------------------
    def _start_mariadb(self) -> subprocess.Popen:
        datadir = os.path.join(self.base, "mysql")
        log = os.path.join(self.base, "mariadb.log")
        subprocess.run(["mariadb-install-db", "--no-defaults",
                        "--datadir=" + datadir, "--user=root",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True,
                       stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        return self._spawn("mariadb", [
            "/usr/sbin/mariadbd", "--no-defaults", "--datadir=" + datadir,
            "--socket=" + self.db_sock, "--skip-networking", "--user=root",
            "--pid-file=" + os.path.join(self.base, "mariadb.pid"),
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0", "--skip-log-bin",
            "--character-set-server=utf8mb4"], log)

    def _sql(self, statement: str) -> None:
        subprocess.run(["mariadb", "--no-defaults", "-uroot",
                        "--socket=" + self.db_sock, "-e", statement],
                       check=True, capture_output=True)

    def _write_config(self) -> None:
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent("""\
                [DEFAULT]
                core_plugin = ml2
                service_plugins =
                auth_strategy = noauth
                api_paste_config = %(paste)s
                transport_url = %(url)s
                agent_down_time = %(down)d
                api_workers = 1
                rpc_workers = 1
                rpc_state_report_workers = 1
                notify_nova_on_port_status_changes = false
                notify_nova_on_port_data_changes = false
                debug = true
                [database]
                connection = mysql+pymysql://root@/neutron?unix_socket=%(sock)s
                [oslo_concurrency]
                lock_path = %(base)s/lock
                [AGENT]
                report_interval = 2
                """) % {"url": self.transport_url, "down": AGENT_DOWN_TIME,
                        "sock": self.db_sock, "base": self.base,
                        "paste": PASTE})
        with open(self.ml2_conf, "w") as f:
            f.write(textwrap.dedent("""\
                [ml2]
                type_drivers = flat,vlan
                tenant_network_types =
                mechanism_drivers = vio4wd
                [ml2_type_flat]
                flat_networks = *
                [ml2_type_vlan]
                network_vlan_ranges = physnet1:100:199
                """))

    # ---- the whole stack -----------------------------------------------
    def start(self, deadline_s: float = 300) -> "NeutronStack":
        deadline = time.monotonic() + deadline_s
        rabbit = self._start_rabbit()
        db = self._start_mariadb()
        self._write_config()
        while not os.path.exists(self.db_sock):
            if db.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mariadb did not start: " + _tail(
                    os.path.join(self.base, "mariadb.log")))
            time.sleep(0.2)
        self._sql("CREATE DATABASE neutron CHARACTER SET utf8mb4")
        subprocess.run([os.path.join(BIN, "neutron-db-manage"),
                        "--config-file", self.conf,
                        "--config-file", self.ml2_conf,
                        "upgrade", "heads"], check=True,
                       stdout=open(os.path.join(self.base, "db-manage.log"),
                                   "ab"), stderr=subprocess.STDOUT,
                       timeout=max(1, deadline - time.monotonic()))
        wait_port(self.amqp_port, deadline, "rabbitmq", rabbit,
                  os.path.join(self.base, "rabbitmq.log"))
        self._spawn("neutron-rpc-server", [
            os.path.join(BIN, "neutron-rpc-server"), "--config-file",
            self.conf, "--config-file", self.ml2_conf], self.rpc_log)
        env = dict(os.environ, OS_NEUTRON_CONFIG_DIR=self.base,
                   OS_NEUTRON_CONFIG_FILES="neutron.conf;ml2_conf.ini")
        api = self._spawn("neutron-api", [
            sys.executable, "-m", "tests.functional.wsgi_server",
            "neutron.wsgi.api:application", str(self.api_port)],
            self.api_log, env)
        wait_port(self.api_port, deadline, "neutron api", api, self.api_log)
        return self

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        self.procs = []

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # ---- the API -------------------------------------------------------
    def request(self, method: str, path: str,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.api + path, data=data, method=method,
            # noauth: without a project header Neutron makes an elevated
            # context of these roles (service: as Nova, who alone may set
            # binding:profile)
            headers={"Content-Type": "application/json",
                     "X-Roles": "admin,member,reader,service"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body

    def agents(self, binary: str = "vio4wd-agent") -> list[dict[str, Any]]:
        return [a for a in self.get("/v2.0/agents")["agents"]
                if a["binary"] == binary]

    def log(self) -> str:
        out = []
        for path in (self.api_log, self.rpc_log):
            with open(path, errors="replace") as f:
                out.append(f.read())
        return "\n".join(out)
