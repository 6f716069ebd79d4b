import { applyDecorators } from '@nestjs/common';
import { Type } from 'class-transformer';
import { ArrayMaxSize, getMetadataStorage, IsArray, ValidateBy, ValidateNested, ValidationTypes } from 'class-validator';
import type { FieldError } from './errors';

type Dto = new (...args: never[]) => object;
interface Bound {
  property: string;
  /** Why the raw value is too big (class-validator's wording where it has one), or null when it is within bounds. */
  tooBig: (value: unknown, property: string) => string | null;
  /** The DTO class of an array's items, when they are objects validated in turn: their own bounds are checked too. */
  of?: () => Dto;
}

/**
 * The class-validator name under which a bound is declared. A bound lives in class-validator's metadata (as a
 * check that always passes, carrying the bound as its constraint) rather than on the DTO's prototype: mapped
 * types (PartialType, PickType…) copy class-validator metadata to a class that does not extend its source,
 * so an update DTO `extends PartialType(CreateXDto)` keeps its create DTO's bounds (attack pass 12 #3).
 */
const BOUND = 'shouhuBodyBound';

function declare(bound: Omit<Bound, 'property'>): PropertyDecorator {
  return ValidateBy({ name: BOUND, constraints: [bound], validator: { validate: () => true } });
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

interface Shape {
  bounds: Bound[];
  /** Properties validated as one nested object (ValidateNested on a property whose declared type is a DTO class): their bounds are checked too. */
  nested: { property: string; of: Dto }[];
}

/** Per DTO class (metadata is complete once the classes are loaded): its bounds and nested objects, own and inherited. */
const shapes = new WeakMap<Dto, Shape>();

function shapeOf(cls: Dto): Shape {
  let shape = shapes.get(cls);
  if (shape) return shape;
  shape = { bounds: [], nested: [] };
  const seen = new Set<string>();
  for (const m of getMetadataStorage().getTargetValidationMetadatas(cls, '', false, false)) {
    if (m.name === BOUND) shape.bounds.push({ ...(m.constraints[0] as Omit<Bound, 'property'>), property: m.propertyName });
    else if (m.type === ValidationTypes.NESTED_VALIDATION && !m.each && !seen.has(m.propertyName)) {
      seen.add(m.propertyName);
      // design:type is copied by mapped types too; an array (ValidateNested each) is a BoundedArray's business.
      const t = Reflect.getMetadata('design:type', cls.prototype as object, m.propertyName) as unknown;
      if (typeof t === 'function' && t !== Array && t !== Object) shape.nested.push({ property: m.propertyName, of: t as Dto });
    }
  }
  shapes.set(cls, shape);
  return shape;
}

/**
 * The bounded properties of `value` (a raw body for `cls`) that are too big, as field errors named as the
 * ValidationPipe names them (`levels`, `levels.0.targets`, `calendar.terms`). The global ValidationPipe
 * (makeValidationPipe) asks first and refuses such a body at once, naming only these fields. Goes into the
 * items of an array only when that array is within its bound, and into a nested object (ValidateNested of a
 * DTO class: a school's timetable and calendar), so the work is bounded by the bounds and the body's depth
 * (http.jsonMaxDepth), never by its arrays; anything else (a value of the wrong type, a wrong item) is left to the pipe.
 */
export function outOfBounds(cls: Dto, value: unknown, prefix = ''): FieldError[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: FieldError[] = [];
  const shape = shapeOf(cls);
  for (const b of shape.bounds) {
    const v = (value as Record<string, unknown>)[b.property];
    const field = `${prefix}${b.property}`;
    const reason = b.tooBig(v, b.property);
    if (reason) out.push({ field, reason });
    else if (b.of && Array.isArray(v)) {
      const of = b.of();
      v.forEach((item, i) => out.push(...outOfBounds(of, item, `${field}.${i}.`)));
    }
  }
  for (const n of shape.nested) out.push(...outOfBounds(n.of, (value as Record<string, unknown>)[n.property], `${prefix}${n.property}.`));
  return out;
}
