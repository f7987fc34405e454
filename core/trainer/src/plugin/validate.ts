import { Ajv, type ErrorObject } from 'ajv';
import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';

/** A JSON schema (draft-07 subset that ajv validates); `default` values are filled in. */
export type JSONSchema = Record<string, unknown>;

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false });
const cache = new WeakMap<object, ReturnType<Ajv['compile']>>();

/**
 * Validates `value` against `schema` in place (filling defaults). On failure throws a TricksError that
 * names `where`, the option path (`prefix` + the instance path) and, for an unknown key, the nearest
 * valid key.
 */
export function validate(schema: JSONSchema, value: unknown, where: string, prefix: string, help = PLUGIN_HELP): void {
  let check = cache.get(schema);
  if (!check) {
    check = ajv.compile(schema);
    cache.set(schema, check);
  }
  if (check(value)) return;
  const errors = (check.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'anyOf');
  const first = errors[0] ?? check.errors![0];
  throw new TricksError(`${where}: ${describe(first, schema, prefix)}`, hint(first, schema, help));
}

function pathOf(e: ErrorObject, prefix: string, extra?: string): string {
  const parts = e.instancePath.split('/').filter(Boolean);
  if (extra) parts.push(extra);
  return [prefix, ...parts].filter(Boolean).join('.');
}

function subSchema(schema: JSONSchema, schemaPath: string): JSONSchema | undefined {
  // "#/properties/a/properties/b/additionalProperties" -> the object schema holding the properties
  const parts = schemaPath.replace(/^#\//, '').split('/').slice(0, -1);
  let s: unknown = schema;
  for (const p of parts) s = (s as Record<string, unknown>)?.[decodeURIComponent(p)];
  return s as JSONSchema | undefined;
}

function describe(e: ErrorObject, schema: JSONSchema, prefix: string): string {
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((subSchema(schema, e.schemaPath)?.properties as object) ?? {});
      return `unknown option "${pathOf(e, prefix, key)}"${closest(key, known)}`;
    }
    case 'required':
      return `option "${pathOf(e, prefix, (e.params as { missingProperty: string }).missingProperty)}" is required`;
    case 'enum':
      return `option "${pathOf(e, prefix)}" must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `option "${pathOf(e, prefix) || '(options)'}" ${e.message}`;
  }
}

const PLUGIN_HELP = 'see `tricks plugins` for every option, its type and its default';

function hint(e: ErrorObject, schema: JSONSchema, help: string): string {
  if (e.keyword === 'additionalProperties') {
    const known = Object.keys((subSchema(schema, e.schemaPath)?.properties as object) ?? {});
    return known.length ? `valid options here: ${known.join(', ')}` : 'this object takes no options';
  }
  return help;
}
