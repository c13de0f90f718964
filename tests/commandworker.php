<?php
// A small php-resque-like worker for command pools' tests (what
// tests/commandworker.py does, in PHP): Resque's keys as php-resque writes
// them (tests/golden/php-resque/README.md), RESP over a plain socket, a fork
// per job (pcntl), php-resque's titles. Job class Sleep: args [seconds].
$queues = explode(',', getenv('QUEUE'));
$prefix = rtrim(getenv('PREFIX') ?: 'resque', ':') . ':';
$backend = getenv('REDIS_BACKEND');
$id = gethostname() . ':' . getmypid() . ':' . getenv('QUEUE');

function connect() {
    global $backend;
    // As php-resque 1.2 reads it: host:port (the master gives that form), or unix:
    $address = str_starts_with($backend, 'unix:') ? $backend : 'tcp://' . $backend;
    $socket = stream_socket_client($address, $errno, $error, 5);
    if (!$socket) { fwrite(STDERR, "cannot reach Redis at $address: $error\n"); exit(1); }
    return $socket;
}

function call($socket, ...$args) {
    $out = '*' . count($args) . "\r\n";
    foreach ($args as $arg) { $out .= '$' . strlen($arg) . "\r\n" . $arg . "\r\n"; }
    fwrite($socket, $out);
    return reply($socket);
}

function reply($socket) {
    $line = rtrim(fgets($socket), "\r\n");
    $rest = substr($line, 1);
    switch ($line[0]) {
        case '+': case ':': return $rest;
        case '-': throw new RuntimeException($rest);
        case '$': return $rest == '-1' ? null : substr(fread_all($socket, $rest + 2), 0, -2);
        case '*': $items = []; for ($i = 0; $i < (int)$rest; $i++) { $items[] = reply($socket); } return $items;
    }
}

function fread_all($socket, $n) {
    $data = '';
    while (strlen($data) < $n) { $data .= fread($socket, $n - strlen($data)); }
    return $data;
}

$quit = false; $paused = false;
pcntl_async_signals(true);
pcntl_signal(SIGQUIT, function () use (&$quit) { $quit = true; });
pcntl_signal(SIGTERM, function () use (&$quit) { $quit = true; });
pcntl_signal(SIGINT, function () use (&$quit) { $quit = true; });
pcntl_signal(SIGUSR2, function () use (&$paused) { $paused = true; });
pcntl_signal(SIGCONT, function () use (&$paused) { $paused = false; });
$redis = connect();
call($redis, 'SADD', $prefix . 'workers', $id);
call($redis, 'SET', "{$prefix}worker:$id:started", date('D M d H:i:s T Y'));
while (!$quit) {
    $raw = null;
    foreach ($paused ? [] : $queues as $queue) {
        if (($raw = call($redis, 'LPOP', "{$prefix}queue:$queue")) !== null) { break; }
    }
    if ($raw === null) {
        cli_set_process_title('resque-1.2: ' . ($paused ? 'Paused' : 'Waiting for ' . getenv('QUEUE')));
        usleep((int)(floatval(getenv('INTERVAL')) * 1000000));
        continue;
    }
    $job = json_decode($raw, true);
    call($redis, 'SET', "{$prefix}worker:$id", json_encode(['queue' => $queue, 'run_at' => date('D M d H:i:s T Y'),
                                                            'payload' => $job]));
    $pid = pcntl_fork();
    if ($pid == 0) {
        cli_set_process_title("resque-1.2: Processing $queue since " . time());
        usleep((int)($job['class'] == 'Sleep' ? $job['args'][0] * 1000000 : 0));
        exit(0);
    }
    cli_set_process_title("resque-1.2: Forked $pid at " . time());
    while (pcntl_waitpid($pid, $status) == -1 && pcntl_get_last_error() == PCNTL_EINTR) {}
    call($redis, 'INCRBY', $prefix . 'stat:processed', '1');
    call($redis, 'INCRBY', "{$prefix}stat:processed:$id", '1');
    call($redis, 'DEL', "{$prefix}worker:$id");
}
call($redis, 'SREM', $prefix . 'workers', $id);
call($redis, 'DEL', "{$prefix}worker:$id", "{$prefix}worker:$id:started", "{$prefix}stat:processed:$id");
