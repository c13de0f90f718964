"""OS plumbing for long-running processes: signals, PID files, process titles
(title), --daemonize (daemon), sd_notify (systemd) and logging (logs).
"""
