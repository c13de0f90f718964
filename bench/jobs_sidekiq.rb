# Sidekiq jobs for the bench (bench/sidekiq.py runs `sidekiq -r` on this file):
# the same jobs as jobs_resqued.py.
require "sidekiq"

# Debian pairs Sidekiq 6.4 with redis-rb 4.8, which warns on every BRPOP
# Sidekiq makes (a line per job on stdout); Sidekiq's own pinned redis-rb
# does not.
Redis.silence_deprecations = true

# The completion write: Sidekiq counts processed jobs in memory and writes
# the count with its heartbeat (every 5 s), too late for the harness to see
# a drain end. This writes one INCR after each job, in a pipeline, as
# resqued's outcome transaction counts each job in Redis.
class DoneCounter
  def call(_worker, _job, _queue)
    yield
    Sidekiq.redis { |conn| conn.pipelined { |pipe| pipe.incr("bench:sidekiq:done") } }
  end
end

Sidekiq.configure_server do |config|
  config.logger.level = Logger::WARN   # as every contender: no line per job
  config.server_middleware { |chain| chain.add DoneCounter }
end

class NoopJob
  include Sidekiq::Worker

  def perform(*_args); end
end

class PidJob
  include Sidekiq::Worker

  def perform(key)
    Sidekiq.redis { |conn| conn.rpush(key, Process.pid) }
  end
end

class LatencyJob
  include Sidekiq::Worker

  def perform(enqueued)
    started = Time.now.to_f
    Sidekiq.redis { |conn| conn.rpush("bench:latency", "#{enqueued} #{started}") }
  end
end
