"""Run the health app under gunicorn inside the ``health`` child process.

gunicorn runs embedded (``BaseApplication``) rather than from its command line, so
the arbiter and its worker inherit the supervisor's shared status mapping through
fork. The arbiter handles SIGTERM itself: it stops its worker and exits.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from replicator import logs
from replicator.config import Config
from replicator.health import create_app
from replicator.status import SlotState, StatusBlock

logger = logging.getLogger(__name__)


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, sending its lines through the service's own handler.

    gunicorn writes its error log with its own handler and format by default; here its
    records go to the root logger instead, so they carry the service's text or JSON
    format and reach stderr through the supervisor like every other line.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True


class HealthApplication(BaseApplication):
    def __init__(self, config: Config, status: StatusBlock, slot_index: int) -> None:
        self.config = config
        self.status = status
        self.slot_index = slot_index
        super().__init__()

    def load_config(self) -> None:
        settings = {
            "bind": [_bind_address(self.config.health_host, self.config.health_port)],
            "workers": 1,
            "worker_class": "gthread",
            "threads": 4,
            "timeout": 30,
            "graceful_timeout": 5,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": "replicator.health_server.GunicornLogger",
            "loglevel": "warning",
            "proc_name": "schematic-datastream-replicator-health",
            "when_ready": self._when_ready,
        }
        for name, value in settings.items():
            self.cfg.set(name, value)

    def _when_ready(self, server: Any) -> None:
        # The socket is bound: from here a failure is no longer a start-up failure.
        self.status.slot(self.slot_index).state = SlotState.RUNNING
        # gunicorn responds to SIGUSR2 by re-executing its command line, which here is the
        # whole service's: a stray signal would start a second replicator.
        server.handle_usr2 = _ignore_usr2
        logger.info("Health server listening on %s.", self.cfg.bind[0])

    def load(self) -> Any:
        return create_app(self.status.snapshot)


def _ignore_usr2() -> None:
    logger.warning("Ignored SIGUSR2: the health server does not re-execute itself.")


def _bind_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def run_health(config: Config, status: StatusBlock, slot_index: int) -> int:
    """Entry point of the health process, after the fork."""
    logs.set_role("health")
    # A terminal's Ctrl-C reaches the whole process group; gunicorn would take it as
    # a quick stop and stop answering while the rest drains. Leave the group: the
    # supervisor sends SIGTERM when the health server should go.
    os.setpgrp()
    status.slot(slot_index).pid = os.getpid()
    HealthApplication(config, status, slot_index).run()
    return 0
