<?php
// Hand one profiling record to the local bitville-apmd without ever making
// the request wait: a short connect, one non-blocking write, close. If the
// daemon is down or busy the record is lost here, and the request goes on.

function bitville_apm_send(string $socket, array $record): bool
{
    $line = json_encode($record, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    if ($line === false) {
        return false;
    }
    $line .= "\n"; // one record = one JSON object on one line
    // A Unix socket connects at once or fails at once; the 50 ms timeout
    // makes PHP connect non-blocking, so a full backlog fails instead of
    // waiting.
    $s = @stream_socket_client('unix://' . $socket, $errno, $errstr, 0.05);
    if ($s === false) {
        return false;
    }
    stream_set_blocking($s, false);
    // Write once. A partial write is not retried: closing cuts the line,
    // and the daemon counts it as "truncated" rather than PHP waiting.
    $n = @fwrite($s, $line);
    fclose($s);
    return $n === strlen($line);
}

// For the tests: php client.php SOCKET [ID_PREFIX [COUNT]] sends COUNT
// records, one per connection as COUNT PHP requests would (the socket also
// from BITVILLE_APMD_SOCKET). Exit code 1 if any was not sent whole.
if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $socket = $argv[1] ?? getenv('BITVILLE_APMD_SOCKET');
    $prefix = $argv[2] ?? 'php';
    $count = (int)($argv[3] ?? 1);
    $failed = 0;
    for ($i = 0; $i < $count; $i++) {
        $record = [
            'correlation_id' => "$prefix-$i",
            'timings' => ['wall_ms' => 12.5, 'cpu_ms' => 7.25],
            'spans' => [['name' => 'db.query', 'ms' => 3.5, 'sql' => 'SELECT 1 /* "quoted" */']],
        ];
        if (!bitville_apm_send($socket, $record)) {
            $failed++;
        }
    }
    if ($failed > 0) {
        fwrite(STDERR, "$failed of $count records not sent\n");
        exit(1);
    }
}
