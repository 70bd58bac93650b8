# SPDX-License-Identifier: Apache-2.0
"""vio4wd-agent: relay SR-IOV VFs to vhost-user VMs.

Exit codes: 0 clean stop (SIGTERM/SIGINT), 2 bad configuration, 1 start-up
failure of the data plane or another agent already running.

SIGHUP reads the configuration again (the same files and arguments) and
applies what can change while relays run: the static VFs (added, removed,
changed, and retried when they failed before), the CPU pins, the VFIO
binding and the log level.  A bad configuration is logged and the running
one kept; anything else that changed is named as taking effect at the next
start.
"""
from __future__ import annotations

import logging as py_logging
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from vio4wd_agent import conf as vconf
from vio4wd_agent import exception, logescape
from vio4wd_agent.agent import Agent
from vio4wd_agent.conf import legacy, parsing, settings
from vio4wd_agent.pidfile import PidFile

LOG = logging.getLogger(__name__)

CLI_OPTS = [
    cfg.StrOpt("legacy-config", metavar="FILE",
               help="Read virtio-forwarder's /etc/default/virtioforwarder "
                    "format; its variables override the config files."),
]

def _fail(message: str) -> None:
    sys.stderr.write("vio4wd-agent: %s\n" % message)


def load(argv: list[str] | None) -> tuple[cfg.ConfigOpts,
                                          legacy.LegacyConfig | None]:
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    vconf.register_opts(conf)
    conf.register_cli_opts(CLI_OPTS)
    conf(argv, project="vio4wd", prog="vio4wd-agent")
    old = None
    if conf.legacy_config:
        old = legacy.read(conf.legacy_config)
        legacy.apply(conf, old)
        if old.log_level is not None and old.log_level >= 7:
            conf.set_override("debug", True)
    return conf, old


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        conf, old = load(args)
    except (cfg.Error, exception.ConfigError) as exc:
        _fail("configuration error: %s" % exc)
        return 2
    logging.setup(conf, "vio4wd")
    logescape.install()
    if old is not None:
        if old.log_level is not None:
            py_logging.getLogger().setLevel(parsing.python_log_level(old.log_level))
        legacy.report(old)
    try:
        s = settings.build(conf, old.origins if old else None)
    except (cfg.Error, exception.ConfigError) as exc:
        LOG.error("configuration error: %s", exc)
        _fail("configuration error: %s" % exc)
        return 2

    pidfile = PidFile(s.pid_file) if s.pid_file else None
    wake = threading.Event()
    pending: set[str] = set()

    def on_signal(signum: int, _frame: object) -> None:
        # no real work in a signal handler: the main loop does it
        pending.add("reload" if signum == signal.SIGHUP else "stop")
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    agent = Agent(s, conf=conf)
    try:
        if pidfile:
            pidfile.acquire()
        agent.start()
    except (exception.Vio4wdException, OSError) as exc:
        LOG.error("cannot start: %s", exc)
        _fail("cannot start: %s" % exc)
        agent.stop()
        if pidfile:
            pidfile.release()
        return 1
    LOG.info("vio4wd agent running (pid file %s)", s.pid_file)
    while "stop" not in pending:
        wake.wait(1.0)
        wake.clear()
        if "stop" in pending:
            LOG.info("stop signal received, stopping")
        elif "reload" in pending:
            pending.discard("reload")
            LOG.info("SIGHUP received, reading the configuration again")
            reload(agent, args)
    agent.stop()
    if pidfile:
        pidfile.release()
    LOG.info("vio4wd agent stopped")
    return 0


def reload(agent: Agent, args: list[str]) -> None:
    try:
        conf, old = load(args)
        new = settings.build(conf, old.origins if old else None,
                             memory=agent.settings.memory)
    except (cfg.Error, exception.ConfigError) as exc:
        error = str(exc)
    else:
        error = ""
    if error:
        LOG.error("reload: configuration error: %s; the running "
                  "configuration is kept", error)
        return
    if old is not None and old.log_level is not None:
        py_logging.getLogger().setLevel(parsing.python_log_level(old.log_level))
    else:
        py_logging.getLogger().setLevel(
            py_logging.DEBUG if conf.debug else py_logging.INFO)
    try:
        agent.reload(new)
    except Exception:   # the agent runs on, with what it had
        LOG.exception("reload: failed part way; relays not yet changed "
                      "keep their running configuration")


if __name__ == "__main__":
    sys.exit(main())
