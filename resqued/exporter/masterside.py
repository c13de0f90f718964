"""What the exporter asks the master at each scrape: the ``metrics``
command on its control socket (protocols/controlsocket.py), with a short
timeout: a master that does not answer leaves its series out of this
scrape (resqued_up 0), the Redis part still answers."""

import logging

from resqued.ctl.masterclient import request
from resqued.protocols.controlsocket import Command, ControlError, Refusal, typed_answer

log = logging.getLogger("resqued.exporter")

TIMEOUT = 0.25


class MasterSide:
    def __init__(self, control_socket: str | None):
        self.path = control_socket
        self._said = None

    def read(self) -> dict | None:
        """The master's Metrics, or None."""
        if not self.path:
            return None
        try:
            answer = typed_answer(request(self.path, Command.METRICS, timeout=TIMEOUT))
            if isinstance(answer, Refusal) or answer.metrics is None:
                raise ControlError(f"the master refused: {getattr(answer, 'error', 'no metrics')}")
        except ControlError as exc:
            if self._said != str(exc):
                log.warning("metrics: the master's part is missing from this scrape: %s", exc)
                self._said = str(exc)
            return None
        self._said = None
        return answer.metrics
