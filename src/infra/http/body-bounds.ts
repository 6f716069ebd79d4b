import { applyDecorators } from '@nestjs/common';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, ValidateNested } from 'class-validator';
import type { FieldError } from './errors';

type Dto = new (...args: never[]) => object;
interface Bound {
  property: string;
  /** Why the raw value is too big (class-validator's wording where it has one), or null when it is within bounds. */
  tooBig: (value: unknown, property: string) => string | null;
  /** The DTO class of an array's items, when they are objects validated in turn: their own bounds are checked too. */
  of?: () => Dto;
}

/** The bounded properties declared on each DTO prototype (its own; inherited ones are found up the prototype chain). */
const bounds = new WeakMap<object, Bound[]>();

function declare(bound: Omit<Bound, 'property'>): PropertyDecorator {
  return (target, key) => {
    const own = bounds.get(target) ?? [];
    if (!bounds.has(target)) bounds.set(target, own);
    own.push({ ...bound, property: String(key) });
  };
}

/**
 * An array of at most `max` items (IsArray + ArrayMaxSize), and with `of` an array of that DTO class
 * (ValidateNested + Type), whose length is checked on the raw body before anything walks it (outOfBounds).
 *
 * class-transformer builds every item and class-validator validates every item even when ArrayMaxSize has
 * already failed: a PUT of an escalation policy with 3,000 levels took about 4 s to be told "at most 5"
 * (attack pass 10 #1; 1,000 levels of 20 targets took 2.5 s of one core in the pipe alone).
 */
export function BoundedArray(max: number, of?: () => Dto): PropertyDecorator {
  return applyDecorators(
    IsArray(),
    ArrayMaxSize(max),
    ...(of ? [ValidateNested({ each: true }), Type(of)] : []),
    declare({
      tooBig: (v, property) => (Array.isArray(v) && v.length > max ? `${property} must contain no more than ${max} elements` : null),
      of,
    }),
  );
}

/**
 * Free-form JSON (an object validated only as such, e.g. an SMS gateway's body template) of at most `maxChars`
 * characters as JSON text, checked on the raw body (outOfBounds): class-transformer copies every key and item of
 * it first, 0.6 s of one core for a 450 kB template the service then refused as too long.
 */
export function BoundedJson(maxChars: number): PropertyDecorator {
  return declare({
    tooBig: (v) => (v !== undefined && v !== null && JSON.stringify(v).length > maxChars ? `must be at most ${maxChars} characters as JSON` : null),
  });
}

function boundsOf(cls: Dto): Bound[] {
  const out: Bound[] = [];
  for (let p: object | null = cls.prototype as object; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null)
    out.push(...(bounds.get(p) ?? []));
  return out;
}

/**
 * The bounded properties of `value` (a raw body for `cls`) that are too big, as field errors named as the
 * ValidationPipe names them (`levels`, `levels.0.targets`). The global ValidationPipe (makeValidationPipe) asks
 * first and refuses such a body at once, naming only these fields. Goes into the items of an array only when
 * that array is within its bound, so the work is bounded by the bounds, never by the body; anything else (a
 * value of the wrong type, a wrong item) is left to the pipe.
 */
export function outOfBounds(cls: Dto, value: unknown, prefix = ''): FieldError[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: FieldError[] = [];
  for (const b of boundsOf(cls)) {
    const v = (value as Record<string, unknown>)[b.property];
    const field = `${prefix}${b.property}`;
    const reason = b.tooBig(v, b.property);
    if (reason) out.push({ field, reason });
    else if (b.of && Array.isArray(v)) {
      const of = b.of();
      v.forEach((item, i) => out.push(...outOfBounds(of, item, `${field}.${i}.`)));
    }
  }
  return out;
}
