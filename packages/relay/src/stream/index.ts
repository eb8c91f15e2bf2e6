export * from './pgoutput.js'
export { isSlotInUse } from './replication.js'
export * from './sql.js'
export * from './streamer.js'
