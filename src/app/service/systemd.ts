// The systemd service-manager protocol (sd_notify(3)) for Type=notify units, through
// libsystemd: READY=1 once the state file is open and the listeners are up, STOPPING=1 on
// shutdown, RELOADING=1 / READY=1 around a reload, and WATCHDOG=1 pings at half the
// WatchdogSec interval. Without NOTIFY_SOCKET (not run by systemd) every call is a no-op.

import * as sd from 'sd-notify';

export class ServiceNotifier {
  private watchdogTimer: NodeJS.Timeout | undefined;

  ready(status: string): void {
    sd.sendState(`READY=1\nSTATUS=${status}`);
    this.startWatchdog();
  }

  status(status: string): void {
    sd.sendState(`STATUS=${status}`);
  }

  reloading(): void {
    sd.sendState(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  stopping(): void {
    this.stopWatchdog();
    sd.sendState('STOPPING=1\nSTATUS=stopping: flushing deliveries in flight');
  }

  /**
   * Pings come from the event loop: a loop blocked for longer than WatchdogSec stops them,
   * and systemd restarts the daemon. Records are safe in SQLite across that restart.
   */
  private startWatchdog(): void {
    const timeoutMs = sd.watchdogInterval();
    if (timeoutMs <= 0 || this.watchdogTimer) return;
    sd.watchdog();
    this.watchdogTimer = setInterval(() => sd.watchdog(), Math.max(1, Math.floor(timeoutMs / 2)));
    this.watchdogTimer.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}
