import { Param, ParseUUIDPipe } from '@nestjs/common';
import { Errors } from './errors';

/** A path parameter that must be a UUID; anything else is a field-level 400, never a 500. */
export const UuidParam = (name = 'id') =>
  Param(name, new ParseUUIDPipe({ exceptionFactory: () => Errors.validation([{ field: name, reason: 'must be a UUID' }]) }));
