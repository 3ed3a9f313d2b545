/**
 * Keeps one instance's log within bounds, on the supervisor's side of the channel (so a sandbox
 * process that skips its own checks gains nothing): at most LOGS_PER_SECOND records a second, each
 * cut to MAX_LOG_CHARS (its request id and time checked too); what is dropped is counted and reported in one line.
 */
import type { LogRecord } from '../sandbox/protocol.js';

/** Log records one instance may write per second; more are dropped and counted. */
export const LOGS_PER_SECOND = 1000;
/** The longest log message kept, in characters. */
export const MAX_LOG_CHARS = 16 * 1024;

/** The longest request id a record may carry (the gateway's are about 20 characters). */
const MAX_REQUEST_ID_CHARS = 128;

/** See the file comment. */
export class LogLimiter {
  private windowStart = 0;
  private count = 0;
  private dropped = 0;

  constructor(private readonly sink: (record: LogRecord) => void) {}

  /** Passes the record on, unless this second's allowance is spent. */
  log(record: LogRecord): void {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.flush();
      this.windowStart = now;
      this.count = 0;
    }
    if (++this.count > LOGS_PER_SECOND) {
      this.dropped++;
      return;
    }
    if (record.message.length > MAX_LOG_CHARS)
      record.message = `${record.message.slice(0, MAX_LOG_CHARS)}… (${record.message.length - MAX_LOG_CHARS} more characters)`;
    // The other texts are the sandbox's too: a request id is the gateway's (a few characters), a
    // time an ISO string. Anything else is not kept as it came (it would go into the log unbounded).
    if (record.requestId !== undefined && record.requestId.length > MAX_REQUEST_ID_CHARS)
      record.requestId = undefined;
    if (record.time.length > 40 || Number.isNaN(Date.parse(record.time)))
      record.time = new Date().toISOString();
    this.sink(record);
  }

  /** Reports the records dropped since the last report, if any. */
  flush(): void {
    if (this.dropped === 0) return;
    const dropped = this.dropped;
    this.dropped = 0;
    this.sink({
      level: 'warn',
      message: `${dropped} log lines dropped: an instance may write ${LOGS_PER_SECOND} a second.`,
      time: new Date().toISOString(),
    });
  }
}
