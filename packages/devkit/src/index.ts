export * from './kafka.js'
export * from './migrate.js'
export * from './postgres.js'
export * from './reachable.js'
