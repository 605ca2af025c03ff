// Delivery reports in batches: native/node-rdkafka/batched-delivery-reports.patch, applied
// to node-rdkafka by `make deps`, lets node-rdkafka hand JavaScript the opaques of every
// successful report of one flush as a single array, instead of calling into JavaScript with
// an object per report, which cost 1.5 of the 8.6 µs of CPU per record of a backlog's
// drain (docs/benchmarks.md). Reports of failures, and of messages with a key, still
// come one by one, as released node-rdkafka sends them. An unpatched node-rdkafka ignores
// the switch and sends every report one by one: both forms are handled.

import type { DeliveryReport, Producer } from 'node-rdkafka';

/** What node-rdkafka keeps of its callbacks until connect() hands them to the addon. */
interface CallbackConfigs {
  _cb_configs?: { event?: { delivery_cb?: { batch_reports?: boolean } } };
}

/**
 * Ask the patched addon for batches. Call before connect(): the addon reads the switch
 * when connect() configures the callbacks. False when this node-rdkafka has no delivery
 * callback to set it on (dr_cb not configured).
 */
export function requestBatchedReports(producer: Producer): boolean {
  const callback = (producer as unknown as CallbackConfigs)._cb_configs?.event?.delivery_cb;
  if (callback === undefined) return false;
  callback.batch_reports = true;
  return true;
}

/** The opaques of a batch of successful reports, or undefined for a single report. */
export function batchedOpaques(report: DeliveryReport | { opaques: unknown[] }): unknown[] | undefined {
  return 'opaques' in report && Array.isArray(report.opaques) ? report.opaques : undefined;
}
