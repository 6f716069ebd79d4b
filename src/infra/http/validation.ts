import { ValidationError, ValidationPipe } from '@nestjs/common';
import { Errors, FieldError } from './errors';

/** Flattens class-validator's tree into `field.path: reason` entries. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    for (const reason of Object.values(e.constraints ?? {})) out.push({ field, reason });
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

export function makeValidationPipe(expectedType?: new (...args: never[]) => unknown): ValidationPipe {
  return new ValidationPipe({
    expectedType,
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    transformOptions: { enableImplicitConversion: false },
    exceptionFactory: (errors) => Errors.validation(flattenValidationErrors(errors)),
  });
}
