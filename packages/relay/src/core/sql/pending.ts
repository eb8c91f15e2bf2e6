/**
 * The `status = 'pending'` guard of statements that name their rows by id.
 * @module
 */

/**
 * `status = 'pending'` of `alias`, written so that the planner cannot answer it from the partial
 * index of pending rows: a statement that names its rows by id must find them through the
 * primary key (or, on a small table, a sequential scan). On a table not analyzed yet the planner
 * took that index, estimated at a few hundred rows, and walked every entry of it, those of rows
 * already published or deleted and not vacuumed yet included: 170k entries and 22 ms for 770 ids,
 * against 3 ms by key. `status` is NOT NULL, so `IS NOT FALSE` changes nothing else.
 *
 * @example
 * `UPDATE t AS o SET … WHERE o.id = ANY($1::uuid[]) AND ${stillPending('o')}`
 */
export const stillPending = (alias: string): string => `(${alias}.status = 'pending') IS NOT FALSE`
