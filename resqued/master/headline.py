"""The master's headline: its process title (what ps shows) and systemd's
STATUS=, each set only when it changes: the loop turns once per worker
report, and each setting is a syscall or a datagram."""

from resqued.process.title import set_raw_title


class Headline:
    def __init__(self, name: str, notifier):
        self.name = name              # the config file's
        self.notifier = notifier      # process/systemd.py's Notifier
        self.title = None
        self.status = None

    def show(self, title: str, status: str) -> None:
        """``title`` and ``status`` as requests.py's headline() words them."""
        if title != self.title:
            set_raw_title(f"resqued-master[{self.name}]: {title}")
            self.title = title
        if status != self.status:
            self.notifier.status(status)
            self.status = status
