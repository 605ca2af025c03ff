// Types for sd-notify (github.com/systemd/node-sd-notify), a thin binding of libsystemd's
// sd_notify(3); the package ships none.
declare module 'sd-notify' {
  /** sd_pid_notify(process.pid, "READY=1") */
  export function ready(): void;
  /** sd_pid_notify(pid, "STOPPING=1") */
  export function stopping(pid: number): void;
  /** sd_notify("WATCHDOG=1") */
  export function watchdog(): void;
  /** sd_watchdog_enabled(): the watchdog timeout in ms for this process, 0 when off */
  export function watchdogInterval(): number;
  /** sd_notify(state): any newline-separated assignments */
  export function sendState(state: string): void;
}
