/**
 * How busy the shop is at a given moment, relative to its weekly average (1).
 * Visitors are mostly in Europe and the Americas, so in UTC traffic is lowest
 * around 05:00 and peaks in the evening, when Europe is home from work and the
 * Americas are in their afternoon; weekends are quieter than weekdays.
 */

/** Relative traffic at the start of each UTC hour; interpolated in between. */
const HOURLY = [
  0.95, 0.8, 0.62, 0.47, 0.37, 0.33, 0.38, 0.55, 0.75, 0.9, 1.0, 1.05, 1.1, 1.15, 1.25, 1.35, 1.45, 1.55,
  1.65, 1.7, 1.62, 1.47, 1.3, 1.12,
];

/** Relative traffic per UTC weekday, Sunday first. */
const WEEKLY = [0.82, 1.0, 0.98, 0.97, 1.0, 0.93, 0.72];

const normalizedHourly = normalize(HOURLY);
const normalizedWeekly = normalize(WEEKLY);

/** An upper bound of `seasonality`, for sampling arrivals by thinning. */
export const MAX_SEASONALITY = Math.max(...normalizedHourly) * Math.max(...normalizedWeekly);

/** Traffic at `time` relative to the weekly average; averages 1 over a week. */
export function seasonality(time: Date): number {
  const hour = time.getUTCHours() + time.getUTCMinutes() / 60 + time.getUTCSeconds() / 3600;
  const index = Math.floor(hour);
  const from = normalizedHourly[index] as number;
  const to = normalizedHourly[(index + 1) % 24] as number;
  const daily = from + (to - from) * (hour - index);
  return daily * (normalizedWeekly[time.getUTCDay()] as number);
}

function normalize(values: number[]): number[] {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return values.map((value) => value / mean);
}
