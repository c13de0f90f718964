"""The one place the version lives: it is also part of every process title
(``resque-<version>: …``), which Ruby Resque's pruner matches with ``resque-\\d``."""

__version__ = "0.1.0"
