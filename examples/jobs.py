"""Demo jobs for `make run`: one of each shape resqued runs."""

import time


class SendWelcomeEmail:
    """php-resque style: perform(self) reads self.args (a dict)."""

    def setUp(self):
        self.started = time.monotonic()

    def perform(self):
        time.sleep(0.2)  # pretend to talk to an SMTP server
        print(f"  -> welcome email sent to {self.args['to']}", flush=True)


class ResizeImage:
    """Ruby style: perform receives the payload's args."""

    @staticmethod
    def perform(path, width, height):
        time.sleep(0.1)
        print(f"  -> resized {path} to {width}x{height}", flush=True)


def rebuild_search_index(section):
    """A plain function is a job too."""
    print(f"  -> search index rebuilt for {section}", flush=True)


class ChargeCard:
    """Fails on purpose, to show the failed list."""

    def perform(self):
        raise RuntimeError(f"card declined for order {self.args['order']}")
