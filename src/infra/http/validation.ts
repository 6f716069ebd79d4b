import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { outOfBounds } from './body-bounds';
import { Errors, FieldError } from './errors';

/** Constraints that say what a value must be at all: when one fails, the others (its range, length…) mean nothing. */
const FIRST_CONSTRAINTS = [
  'whitelistValidation',
  'isDefined',
  'isNumber',
  'isInt',
  'isString',
  'isBoolean',
  'isUuid',
  'isUUID',
  'isIn',
  'isEnum',
  'isArray',
  'isObject',
  'isDateString',
  'isIso8601',
  'isISO8601',
  'nestedValidation',
];

/**
 * One reason for a field: a missing value is "is required" (not "must be a number", "must not be
 * less than 0" and "must not be greater than 100000" at once); else the failed type check, else
 * the first failed rule.
 */
function oneReason(e: ValidationError): string | null {
  const constraints = e.constraints ?? {};
  const names = Object.keys(constraints);
  if (names.length === 0) return null;
  if ((e.value === undefined || e.value === null) && !names.includes('whitelistValidation')) return `${e.property} is required`;
  const name = FIRST_CONSTRAINTS.find((n) => n in constraints) ?? names[0];
  return constraints[name];
}

/** Flattens class-validator's tree into `field.path: reason` entries, one per field. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const reason = oneReason(e);
    if (reason !== null) out.push({ field, reason });
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

/**
 * The ValidationPipe, with values bigger than their BoundedArray / BoundedJson refused first (body-bounds.ts):
 * before class-transformer and class-validator walk every item of them.
 */
class BoundedValidationPipe extends ValidationPipe {
  constructor(private readonly bodyType: (new (...args: never[]) => unknown) | undefined) {
    super({
      expectedType: bodyType,
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
      transformOptions: { enableImplicitConversion: false },
      exceptionFactory: (errors) => Errors.validation(flattenValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const cls = this.bodyType ?? metadata.metatype;
    const tooBig = typeof cls === 'function' ? outOfBounds(cls as new () => object, value) : [];
    if (tooBig.length) throw Errors.validation(tooBig);
    return super.transform(value, metadata);
  }
}

export function makeValidationPipe(expectedType?: new (...args: never[]) => unknown): ValidationPipe {
  return new BoundedValidationPipe(expectedType);
}
