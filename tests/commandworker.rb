# A small Ruby-Resque-like worker for command pools' tests (what
# tests/commandworker.py does, in Ruby, with only the redis gem): Resque's
# keys as Ruby Resque 2.7 writes them (tests/golden/ruby-resque/README.md),
# a fork per job, Resque's titles. Job class Sleep: args [seconds].
require "json"
require "socket"
require "time"
require "redis"

queues = ENV.fetch("QUEUE").split(",")
prefix = ENV.fetch("PREFIX", "resque").chomp(":") + ":"
backend = ENV.fetch("REDIS_URL")   # what redis-rb (and so Ruby Resque) reads
id = "#{Socket.gethostname}:#{Process.pid}:#{ENV.fetch('QUEUE')}"
redis = backend.start_with?("unix://") ? Redis.new(path: backend.delete_prefix("unix://")) : Redis.new(url: backend)
quit = false
paused = false
%w[QUIT TERM INT].each { |sig| trap(sig) { quit = true } }
trap("USR2") { paused = true }
trap("CONT") { paused = false }

redis.sadd?(prefix + "workers", id)
redis.set("#{prefix}worker:#{id}:started", Time.now.strftime("%Y-%m-%d %H:%M:%S %z"))
until quit
  queue, raw = nil, nil
  (paused ? [] : queues).each do |q|
    raw = redis.lpop("#{prefix}queue:#{q}")
    (queue = q) and break if raw
  end
  unless raw
    Process.setproctitle("resque-2.7.0: #{paused ? 'Paused' : "Waiting for #{ENV.fetch('QUEUE')}"}")
    sleep ENV.fetch("INTERVAL", "5").to_f
    next
  end
  job = JSON.parse(raw)
  redis.set("#{prefix}worker:#{id}",
            JSON.generate("queue" => queue, "run_at" => Time.now.utc.iso8601, "payload" => job))
  pid = fork do
    Process.setproctitle("resque-2.7.0: Processing #{queue} since #{Time.now.to_i} [#{job['class']}]")
    sleep job["args"][0].to_f if job["class"] == "Sleep"
    exit!(0)
  end
  Process.setproctitle("resque-2.7.0: Forked #{pid} at #{Time.now.to_i}")
  begin
    Process.waitpid(pid)
  rescue Errno::EINTR
    retry
  end
  redis.pipelined do |pipe|
    pipe.del("#{prefix}worker:#{id}")
    pipe.incrby(prefix + "stat:processed", 1)
    pipe.incrby("#{prefix}stat:processed:#{id}", 1)
  end
end
redis.srem?(prefix + "workers", id)
redis.del("#{prefix}worker:#{id}", "#{prefix}worker:#{id}:started", "#{prefix}stat:processed:#{id}")
