/**
 * `prisma-outbox-generator`: add it to schema.prisma to get a typed `outbox` extension that knows
 * the schema's primary keys, relations and `/// @outbox` annotations.
 * ```prisma
 * generator outbox {
 *   provider = "prisma-outbox-generator"
 *   output   = "../src/generated/outbox"
 * }
 * ```
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import generatorHelper from '@prisma/generator-helper'
import { annotationWarnings } from './annotation.js'
import { renderCatalogueModule, topicJsonSchemas, topicSchemaFile } from './catalogue.js'
import {
  type DmmfEnum,
  type DmmfModel,
  datamodelFromDmmf,
  enumValues,
  renderCaptureSql,
  renderModule,
} from './datamodel-from-dmmf.js'

export { annotationWarnings, parseOutboxAnnotation } from './annotation.js'
export {
  catalogueEvents,
  payloadJsonSchema,
  renderCatalogueModule,
  topicJsonSchemas,
} from './catalogue.js'
export { datamodelFromDmmf, enumValues, renderCaptureSql, renderModule } from './datamodel-from-dmmf.js'

export function runGenerator(): void {
  generatorHelper.generatorHandler({
    onManifest: () => ({ prettyName: 'Prisma Outbox', defaultOutput: './generated/outbox' }),
    onGenerate: async (options) => {
      const output = options.generator.output?.value
      if (!output) throw new Error('generator outbox: set output = "<folder>" in schema.prisma')
      const importFrom = options.generator.config.importFrom
      const enums = options.dmmf.datamodel.enums as unknown as DmmfEnum[]
      const datamodel = datamodelFromDmmf(options.dmmf.datamodel.models as unknown as DmmfModel[], enums)
      // Prisma reads a generator's stderr as its protocol channel and passes stdout through.
      for (const warning of annotationWarnings(options.datamodel)) {
        process.stdout.write(`prisma-outbox-generator: warning: ${warning}\n`)
      }
      await mkdir(output, { recursive: true })
      await writeFile(
        join(output, 'index.ts'),
        renderModule(datamodel, typeof importFrom === 'string' ? importFrom : undefined),
      )
      const sql = renderCaptureSql(datamodel)
      if (sql !== undefined) await writeFile(join(output, 'capture.sql'), sql)
      const values = enumValues(enums)
      await writeFile(join(output, 'events.ts'), renderCatalogueModule(datamodel, values))
      for (const [topic, schema] of topicJsonSchemas(datamodel, values)) {
        const file = join(output, topicSchemaFile(topic))
        await mkdir(dirname(file), { recursive: true })
        await writeFile(file, `${JSON.stringify(schema, null, 2)}\n`)
      }
    },
  })
}
