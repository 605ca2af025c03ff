// JSON logs with pino. The daemon logs to stdout (journald under systemd); one-shot
// commands log to stderr so their stdout stays data.

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/daemon-conf';

export type { Logger };

export function createLogger(level: LogLevel, destination: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: destination, sync: true }),
  );
}
